"""``edgest predict``: run a compiled artifact on real videos with its target's runtime and name the classes.

The artifact comes from a run folder (``report.json`` says the target, the model's input shape and
preprocessing; the artifact is checked against its sha256 first) or is given bare (then the
target, and the model or input shape, are needed). Each video is read with the model's
preprocessing through :func:`edgest.data.preprocessing.read_clip`, the same function eval and
calibration use, and run by the runner the target's :meth:`~edgest.target.Target.load` returns
(in this process). Scores are softmax probabilities of the first output. Class names come from
``--labels FILE`` or the shipped list for the model's class count (:mod:`edgest.data.labels`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgest.errors import BadInput, TargetUnavailable
from edgest.records import InputSpec, ModelSpec


@dataclass(frozen=True)
class Source:
    """What predict runs: the artifact, the target that loads it (with its options) and the model's spec."""

    artifact: Path
    target: str
    spec: ModelSpec
    options: dict[str, Any] = field(default_factory=dict)
    bare: bool = False  # no report vouches for the file, its target or its input shape: the user named them


def resolve_source(path: Path, target: str | None = None, model: str | None = None,
                   input_shape: str | None = None) -> Source:
    """A run folder (its report says everything) or a bare artifact (``target`` and ``model`` or ``input_shape``)."""
    path = Path(path)
    if path.is_dir() and (path / "report.json").is_file():
        from edgest.report.writers import read_run

        report = read_run(path)  # checks the artifact is the one the report describes
        if target is not None and target != report.target:
            raise BadInput(f"run folder '{path}' was compiled for target '{report.target}', not '{target}'; "
                           "leave out --target for a run folder")
        details = report.artifact.details if report.artifact else {}
        return Source(path / report.artifact.path, report.target, report.model, dict(details))  # type: ignore[union-attr]
    if not path.exists():
        raise BadInput(f"'{path}' does not exist; give a run folder (edgest compile --out) or an artifact file")
    from edgest.report.writers import bench_folder_refusal

    bench_folder_refusal(path)
    if target is None:
        raise BadInput(f"'{path}' is a bare artifact (no report.json beside it); add --target NAME (the target that made it)")
    return Source(path, target, _bare_spec(path, model, input_shape), bare=True)


def _bare_spec(path: Path, model: str | None, input_shape: str | None) -> ModelSpec:
    from edgest.plan import parse_shape

    shape = parse_shape(input_shape) if input_shape else None
    if model is not None:
        from edgest.model_options import resolve
        from edgest.plugins import get_registry

        entry = get_registry().model(model)
        if shape is not None and len(shape) != len(entry.spec.input.shape):
            raise BadInput(f"input shape {input_shape} does not fit model '{model}' ({entry.spec.input.layout})")
        return resolve(entry, shape, None)
    if shape is None:
        raise BadInput(f"bare artifact '{path}' needs --model NAME (its preprocessing and input shape) or --input-shape "
                       "BxCxTxHxW (edgest's default preprocessing)")
    return ModelSpec(name=path.stem, family="user", input=InputSpec(shape, layout="B,C,T,H,W"), num_classes=0)


def class_names(spec: ModelSpec, labels_file: Path | None) -> tuple[tuple[str, ...] | None, str]:
    """The class names (None: indices only) and where they come from; BadInput for a ``--labels`` file of another count."""
    from edgest.data.labels import for_classes, read_labels

    if labels_file is not None:
        return read_labels(labels_file, spec.num_classes if spec.num_classes >= 2 else None), str(labels_file)
    known = for_classes(spec.num_classes) if spec.num_classes >= 2 else None
    return (known[0], known[1]) if known else (None, "class indices (no list for this class count; give --labels FILE)")


def load_runner(source: Source, threads: int, options: dict[str, Any] | None = None) -> Any:
    """The target's runner for the artifact: options the report's details carry (valid ones of the target's
    table: details also hold descriptions), then ``options``."""
    from edgest.plugins import get_registry

    cls = get_registry().target(source.target)
    target = cls(**{**_valid_options(cls, source.options), **(options or {})})
    target.ensure_available()
    reason = cls.host_unavailable_reason()
    if reason:
        raise TargetUnavailable(f"target '{source.target}' cannot run its artifacts here: {reason}")
    return target.load(source.artifact, threads)


def _valid_options(cls: Any, details: dict[str, Any]) -> dict[str, Any]:
    from edgest.options import check_option

    out = {}
    for key, value in details.items():
        try:
            out[key] = check_option(cls.name, cls.option_table, key, value)
        except BadInput:
            continue  # not an option, or a description of one (e.g. "off" for a bool)
    return out


def top_k(logits: np.ndarray, names: Sequence[str] | None, k: int) -> list[dict[str, Any]]:
    """The ``k`` best classes of one row of logits: rank, index, class name and softmax score."""
    z = np.asarray(logits, np.float64).ravel()
    if names is not None and len(names) != z.size:
        raise BadInput(f"the artifact gives {z.size} scores per clip but the labels list has {len(names)} names; "
                       f"give --labels with {z.size} names")
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")[:k]
    return [{"rank": r + 1, "index": int(i), "class": names[i] if names is not None else f"class {i}", "score": float(p[i])}
            for r, i in enumerate(order)]


def predict(source: Source, videos: Sequence[Path], labels_file: Path | None = None, k: int = 5, threads: int = 1,
            options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Top-``k`` classes of each video; everything is checked (videos exist, labels fit) before the runtime loads."""
    from edgest.data.preprocessing import check, describe, for_spec, read_clip

    prep = for_spec(source.spec)
    if prep is None:
        raise BadInput(f"model '{source.spec.name}' takes {source.spec.input.layout or 'x'.join(map(str, source.spec.input.shape))} "
                       "inputs, not video clips; predict reads videos for B,C,T,H,W models")
    check(prep)
    missing = [str(v) for v in videos if not Path(v).is_file()]
    if missing:
        what = "is not a file (a device, a pipe or a folder)" if Path(missing[0]).exists() else "does not exist"
        raise BadInput(f"video file '{missing[0]}' {what}" + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")
                       + "; give video files (.mp4, .avi, .mkv, ...)")
    names, names_from = class_names(source.spec, labels_file)
    with _bare_refusal(source, "cannot be loaded as an artifact of target '{target}'", "give the file `edgest compile --target "
                       "{target}` wrote, or the --target that made it"):
        runner = load_runner(source, threads, options)
    batch = source.spec.input.shape[0]
    out = []
    for video in videos:  # one clip in memory at a time; a bad video is one error line and nothing printed
        clip = read_clip(video, prep)
        with _bare_refusal(source, "refused a {shape} input", "give the --model or --input-shape it was compiled for"):
            first = runner.run([np.ascontiguousarray(np.repeat(clip[None], batch, axis=0))])[0]
        out.append({"video": str(video), "top": top_k(np.asarray(first).reshape(batch, -1)[0], names, k)})
    return {"model": source.spec.name, "target": source.target, "artifact": str(source.artifact), "labels": names_from,
            "preprocessing": describe(prep), "predictions": out}


@contextmanager
def _bare_refusal(source: Source, problem: str, fix: str) -> Iterator[None]:
    """A runtime's error on a bare artifact as one BadInput line: the user named the file, its target and its
    shape, so a runtime refusing them (ONNX Runtime's protobuf error on a .npz, a shape it was not built for) is
    bad input. An artifact a report vouches for keeps the runtime's own failure."""
    try:
        yield
    except (BadInput, TargetUnavailable):  # already one line; a missing runtime is not the file's fault
        raise
    except Exception as exc:  # every runtime raises its own kinds; targets wrap some of them as EdgestError
        if not source.bare:
            raise
        words = {"target": source.target, "shape": "x".join(map(str, source.spec.input.shape))}
        detail = " ".join(str(exc).split()) or type(exc).__name__
        detail = detail if len(detail) <= 200 else detail[:199] + "…"
        raise BadInput(f"'{source.artifact}' {problem.format(**words)} ({detail}); {fix.format(**words)}") from None
