"""Frozen records that flow through the pipeline.

They hold plain data only (no tensors, no programs) so a whole run serialises to JSON;
stages return new records instead of mutating a shared context.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

#: 1.1 adds ``Report.run_dir``, ``Report.stage_seconds``, ``Report.weights``, ``Report.model_stats`` and
#: ``ModelSpec.preprocessing`` (1.0 reports read with them empty); 1.2 adds ``ModelSpec.step``,
#: ``Report.streaming`` and checks of kind ``streaming`` (older reports read with them empty); 1.3 adds
#: ``Report.coverage`` (compile --coverage; older reports read with it empty)
SCHEMA_VERSION = "1.3"

CheckKind = Literal["accuracy", "latency", "streaming"]
CheckStatus = Literal["passed", "failed", "not_run", "run_failed"]
ReportStatus = Literal["passed", "failed", "incomplete", "error"]


@dataclass(frozen=True)
class InputSpec:
    """One model input: static shape, dtype and a layout string such as ``B,C,T,H,W``."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    layout: str = ""


@dataclass(frozen=True)
class Preprocessing:
    """How a video becomes one model input: which frames, what size, which value convention.

    ``frames`` are sampled ``uniform`` over the whole video, or ``dense``: ``frames`` consecutive
    samples ``stride`` frames apart from the middle of the video (mmaction's test-mode
    ``SampleFrames``). Each frame is resized so its shorter side is ``resize`` pixels (0: just
    covers ``crop``) with ``interpolation``, centre-cropped to ``crop`` (height, width), and
    normalised as ``(x - mean) / std`` per RGB channel, with ``x`` in ``pixel_range`` ("0-1" or
    "0-255", the convention of the release's mean/std). ``source`` says where the values come from.
    Applied by :func:`edgest.data.preprocessing.read_clip`.
    """

    frames: int
    crop: tuple[int, int]
    sampling: Literal["uniform", "dense"] = "uniform"
    stride: int = 1
    resize: int = 0
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    pixel_range: Literal["0-1", "0-255"] = "0-1"
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    source: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        """Rebuild one written by ``dataclasses.asdict`` (lists become tuples; unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return cls(**d)


@dataclass(frozen=True)
class ModelSpec:
    """What a model is: its name, family, build config, input, paper and (for clips) its preprocessing."""

    name: str
    family: str
    input: InputSpec
    num_classes: int
    config: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    #: how a video becomes this model's input (None: not declared; clips then get
    #: :func:`edgest.data.preprocessing.default`)
    preprocessing: Preprocessing | None = None
    #: the method of the built model that returns its step (streaming) module, e.g. ``"step_module"``
    #: (empty: no streaming form); the protocol is :mod:`edgest.streaming.spec`
    step: str = ""


@dataclass(frozen=True)
class PassRecord:
    """What one pass did: options, whether it changed the program, how long, what it cost."""

    name: str
    options: dict[str, Any]
    modified: bool
    seconds: float
    summary: str = ""
    accuracy_delta: dict[str, float] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    """A lowered model on disk. ``path`` is relative to the run folder."""

    model: str
    target: str
    path: str
    format: str
    size_bytes: int
    sha256: str
    passes: tuple[str, ...] = ()
    toolchain: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    compile_seconds: float = 0.0


@dataclass(frozen=True)
class CheckResult:
    """One check of an artifact: accuracy against eager, or latency."""

    kind: CheckKind
    status: CheckStatus
    metrics: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class Report:
    """The outcome of one compile: artifact, checks and, if it stopped early, the error."""

    status: ReportStatus
    model: ModelSpec
    target: str
    precision: str = "fp32"
    artifact: Artifact | None = None
    passes: tuple[PassRecord, ...] = ()
    checks: tuple[CheckResult, ...] = ()
    error: str = ""
    created: str = ""
    schema_version: str = SCHEMA_VERSION
    #: the run folder the compile wrote (as the caller named it)
    run_dir: str = ""
    #: wall-clock seconds per stage (build, capture, passes, lower, quantize, checks)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: where the weights came from: ``{"kind": "file" | "stand-in" | "random-init", "path", "sha256"}``
    #: (:mod:`edgest.report.weights`; empty: not recorded); a loaded file adds its format, what was renamed,
    #: resized, skipped and left at init, with counts (:mod:`edgest.weights.provenance`)
    weights: dict[str, Any] = field(default_factory=dict)
    #: ``{"params", "macs"}`` of the configuration compiled (``model.config`` at ``model.input``; empty: not counted)
    model_stats: dict[str, int] = field(default_factory=dict)
    #: a ``--streaming`` compile's step interface (:func:`edgest.streaming.spec.interface`; also
    #: ``streaming.json`` beside the artifact); empty for whole-input compiles
    streaming: dict[str, Any] = field(default_factory=dict)
    #: ``compile --coverage``: the target's op coverage of the captured program
    #: (:func:`edgest.report.coverage.report_coverage`: status, nodes per verdict, ops not native, the rows of those);
    #: empty when not asked
    coverage: dict[str, Any] = field(default_factory=dict)

    def check(self, kind: CheckKind) -> CheckResult | None:
        """The check of ``kind``, or None if it is not in the report."""
        return next((c for c in self.checks if c.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Rebuild a report written by :meth:`to_dict`."""
        d = dict(data)
        spec = dict(d["model"])
        spec["input"] = InputSpec(**{**spec["input"], "shape": tuple(spec["input"]["shape"])})
        if isinstance(spec.get("preprocessing"), dict):  # absent before 1.1, null when not declared
            spec["preprocessing"] = Preprocessing.from_dict(spec["preprocessing"])
        d["model"] = ModelSpec(**spec)
        if d.get("artifact") is not None and not isinstance(d["artifact"], dict):
            raise TypeError(f"artifact is {type(d['artifact']).__name__}, not an object")
        d["artifact"] = d.get("artifact") or None
        if d["artifact"]:
            art = dict(d["artifact"])
            art["passes"] = tuple(art.get("passes", ()))
            d["artifact"] = Artifact(**art)
        d["passes"] = tuple(PassRecord(**p) for p in d.get("passes", ()))
        d["checks"] = tuple(CheckResult(**c) for c in d.get("checks", ()))
        d["model_stats"] = dict(d.get("model_stats") or {})  # absent before 1.1, null when not counted
        if not isinstance(d.get("weights") or {}, dict):
            raise TypeError(f"weights is {type(d['weights']).__name__}, not an object")
        d["weights"] = dict(d.get("weights") or {})  # absent before 1.1, null when not recorded
        if not isinstance(d.get("streaming") or {}, dict):
            raise TypeError(f"streaming is {type(d['streaming']).__name__}, not an object")
        d["streaming"] = dict(d.get("streaming") or {})  # absent before 1.2
        if not isinstance(d.get("coverage") or {}, dict):
            raise TypeError(f"coverage is {type(d['coverage']).__name__}, not an object")
        d["coverage"] = dict(d.get("coverage") or {})  # absent before 1.3
        return cls(**d)
