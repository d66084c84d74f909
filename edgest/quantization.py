"""The quantisation contract: a target hands out a :class:`Quantizer` for a scheme, or None.

A quantizer works at one of two stages:

* ``"program"`` (:class:`ProgramQuantizer`): on the captured ``ExportedProgram`` before
  lowering, e.g. PT2E prepare → calibrate → convert with the target's quantizer. It returns a
  new program with quantize/dequantize ops; the pipeline measures the pass's accuracy delta on
  that program in eager PyTorch, like any other pass.
* ``"artifact"`` (:class:`ArtifactQuantizer`): on the file the target lowered, e.g. ONNX
  Runtime's static QDQ quantisation. The ``quantize`` pass only records what to do; after
  ``lower`` the pipeline calls :func:`finish` which writes the quantised artifact in place of
  the float one and measures the pass's delta as float artifact vs quantised artifact, both run
  by the target's own runner on the check inputs.

Either way the final accuracy check compares the artifact with eager float PyTorch, under the
limits of the compile's precision (``LIMITS["int8"]`` for ``--precision int8``).

Targets opt in with :meth:`edgest.target.Target.quantizer` and by listing ``"int8"`` in
``precisions``. This module imports nothing heavy.

Per-layer sensitivity (:func:`sensitivity`, the ``quantize`` pass's ``sensitivity=true``) is
leave-one-out through the same quantizer and the same ``skip`` a user would pass: quantise
everything, then everything but one layer, for each conv/linear layer, and measure the output
against float. The output noise that disappears when a layer stays float is that layer's share;
its SQNR (signal over that share) ranks the layers, worst first. Because it goes through the
target's own quantizer and runtime it works for both stages alike, and "keep layer X float" in
the table is exactly what ``--quant-skip X`` does. It costs one quantisation per layer.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from edgest.errors import BadInput, EdgestError, Unsupported

if TYPE_CHECKING:
    import numpy as np
    import torch

    from edgest.data.calibration import CalibrationSet
    from edgest.passes.base import Pass
    from edgest.plugins import Registry
    from edgest.records import PassRecord
    from edgest.target import Lowered, Target

#: quantisation schemes a target may offer: static int8 (weights and activations) and weight-only int8
SCHEMES: tuple[str, ...] = ("int8", "int8-weight")
#: the pass that quantises, and the precision whose accuracy limits its result is checked against
PASS_NAME = "quantize"
PRECISION = "int8"

Stage = Literal["program", "artifact"]


@dataclass(frozen=True)
class Quantized:
    """What a quantizer did: a one-line summary and JSON-able details (settings and why, counts).

    ``program`` is set by program-stage quantizers only.
    """

    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    program: torch.export.ExportedProgram | None = None


class Quantizer(ABC):
    """Base class: one scheme for one target. Subclass :class:`ProgramQuantizer` or :class:`ArtifactQuantizer`."""

    stage: ClassVar[Stage]

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme


class ProgramQuantizer(Quantizer):
    """Quantises the captured program before lowering."""

    stage: ClassVar[Stage] = "program"

    @abstractmethod
    def quantize_program(
        self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...],
        calibration: CalibrationSet, skip: Sequence[str],
    ) -> Quantized:
        """Return a new program (in ``Quantized.program``); modules named in ``skip`` stay float."""


class ArtifactQuantizer(Quantizer):
    """Quantises the lowered artifact."""

    stage: ClassVar[Stage] = "artifact"

    @abstractmethod
    def quantize_artifact(self, src: Path, dst: Path, calibration: CalibrationSet, skip: Sequence[str]) -> Quantized:
        """Write the quantised artifact to ``dst`` (``src`` is left as it is); modules in ``skip`` stay float."""


@dataclass
class PendingArtifactStep:
    """An artifact-stage quantizer the ``quantize`` pass chose, waiting for the lowered artifact.

    ``layers`` is set when the pass asked for a sensitivity report (see :func:`sensitivity`).
    """

    quantizer: ArtifactQuantizer
    calibration: CalibrationSet
    skip: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)
    layers: tuple[str, ...] | None = None


# --------------------------------------------------------------------------- per-layer sensitivity

#: calibration inputs the sensitivity outputs are measured on (the first ones of the set)
SENSITIVITY_INPUTS = 8


def quantizable_layers(program: torch.export.ExportedProgram, skip: Sequence[str] = ()) -> tuple[str, ...]:
    """Conv and linear layers of ``program`` (modules with a weight of 2+ dims), in program order, outside ``skip``."""
    out = []
    for key, value in program.state_dict.items():
        if key.endswith(".weight") and getattr(value, "ndim", 0) >= 2:
            name = key[: -len(".weight")]
            if not any(name == s or name.startswith(s + ".") for s in skip):
                out.append(name)
    return tuple(out)


def _noise(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    import numpy as np

    return float(sum(np.sum((np.asarray(o, np.float64) - np.asarray(r, np.float64)) ** 2) for r, o in zip(reference, outputs)))


def _db(signal: float, noise: float) -> float:
    from edgest.checks.accuracy import SQNR_CAP_DB

    return SQNR_CAP_DB if noise <= 0 else min(SQNR_CAP_DB, 10.0 * math.log10(max(signal, 1e-300) / noise))


def sensitivity(
    run: Callable[[tuple[str, ...]], Sequence[np.ndarray]], reference: Sequence[np.ndarray],
    layers: Sequence[str], skip: Sequence[str] = (), base: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Leave-one-out SQNR per quantised layer, worst first.

    ``run(skip)`` quantises with ``skip`` kept float and returns the outputs on the inputs that
    gave ``reference`` (float). Per layer: ``sqnr_db`` = signal over the output noise that goes
    away when the layer stays float; ``sqnr_if_float_db`` = the model's SQNR with the layer
    kept float (what ``--quant-skip LAYER`` gives); ``gain_db`` = how much that adds. A layer
    the quantizer cannot exclude on its own (BadInput) is listed with the reason. ``base``: the
    outputs with only ``skip`` kept float, when the caller has them already.
    """
    import numpy as np

    from edgest.checks.accuracy import compare

    signal = float(sum(np.sum(np.asarray(r, np.float64) ** 2) for r in reference))
    base_out = run(tuple(skip)) if base is None else base
    base = _noise(reference, base_out)
    all_db = _db(signal, base)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for layer in layers:
        try:
            out = run((*skip, layer))
        except BadInput as exc:
            skipped.append({"layer": layer, "reason": str(exc)[:200]})
            continue
        noise = _noise(reference, out)
        if_float = _db(signal, noise)
        rows.append({"layer": layer, "sqnr_db": round(_db(signal, base - noise), 2), "sqnr_if_float_db": round(if_float, 2),
                     "gain_db": round(if_float - all_db, 2), "top1_agreement_if_float": compare(reference, out)["top1_agreement"]})
    rows.sort(key=lambda r: (r["sqnr_db"], -r["gain_db"]))
    return {
        "method": "leave-one-out: quantise all layers, then all but one; a layer's SQNR is the output signal over "
                  "the output noise that goes away when it stays float (lowest = most sensitive)",
        "inputs": len(reference), "sqnr_all_db": round(all_db, 2), "skip": list(skip),
        "top1_agreement_all": compare(reference, base_out)["top1_agreement"], "layers": rows,
        "not_measured": skipped,
    }


# --------------------------------------------------------------------------- pipeline glue


def plan(passes: list[Pass], precision: str, registry: Registry) -> list[Pass]:
    """Add ``quantize`` (scheme int8, last) for precision int8 unless listed; refuse it for other precisions."""
    listed = any(p.name == PASS_NAME for p in passes)
    if listed and precision != PRECISION:
        raise BadInput(
            f"pass '{PASS_NAME}' makes an int8 model; add --precision {PRECISION} (precision='{PRECISION}') "
            "so the accuracy check uses the int8 limits"
        )
    if precision == PRECISION and not listed:
        return [*passes, registry.pass_(PASS_NAME)(scheme=PRECISION)]
    return passes


def finish(
    passes: Sequence[Pass], records: list[PassRecord], target: Target, lowered: Lowered,
    inputs: Sequence[Sequence[np.ndarray]],
) -> tuple[Lowered, list[PassRecord]]:
    """After ``lower``: run pending artifact-stage quantizers, and put every quantize pass's details in the artifact's.

    The quantised file replaces the float one under the same name. The pass's record gets the
    artifact-level summary, its time, and its accuracy delta (float artifact vs quantised
    artifact on ``inputs``, both run in this process by ``target.load``).
    """
    from edgest.target import Lowered

    records = list(records)
    details = dict(lowered.details)
    for i, p in enumerate(passes):
        if p.name != PASS_NAME or not hasattr(p, "details"):
            continue
        pending: PendingArtifactStep | None = getattr(p, "pending", None)
        if pending is None:
            details["quantization"] = dict(p.details)
            continue
        t0 = time.perf_counter()
        src = lowered.path
        dst = src.with_name(f"{src.stem}.{pending.quantizer.scheme}{src.suffix}")
        try:
            done = pending.quantizer.quantize_artifact(src, dst, pending.calibration, pending.skip)
        except EdgestError:
            raise
        except Exception as exc:  # noqa: BLE001
            from edgest.capture import describe_failure

            raise Unsupported(f"pass '{PASS_NAME}' failed on the {target.name} artifact: {describe_failure(exc)}") from exc
        delta, why = _artifact_delta(target, src, dst, inputs)
        extra: dict[str, Any] = {}
        if pending.layers is not None:
            extra["sensitivity"] = _artifact_sensitivity(target, src, pending)
        float_size = _size(src)
        _replace(dst, src)
        details["quantization"] = {**pending.details, **done.details, "stage": "artifact", "float_size_bytes": float_size,
                                   "accuracy_delta_measured": "float artifact vs quantised artifact, "
                                                              f"{target.name} runner, {len(inputs)} check inputs", **extra}
        rec = records[i]
        records[i] = dataclasses.replace(
            rec, modified=True, seconds=round(rec.seconds + time.perf_counter() - t0, 3), details={**rec.details, **extra},
            summary=f"{done.summary}; calibrated on {len(pending.calibration)} inputs: {pending.calibration.source}; "
                    f"applied after lowering, delta = float vs quantised {target.name} artifact"
                    + (f" (not measured: {why})" if why else ""),
            accuracy_delta=delta,
        )
        p.pending = None  # type: ignore[attr-defined]
    return Lowered(lowered.path, details), records


def _artifact_delta(
    target: Target, src: Path, dst: Path, inputs: Sequence[Sequence[np.ndarray]]
) -> tuple[dict[str, float] | None, str]:
    """Accuracy of the quantised artifact against the float one, or None and why it could not be measured."""
    from edgest.capture import first_line
    from edgest.checks import accuracy

    try:
        runner_f, runner_q = target.load(src, 1), target.load(dst, 1)
        before = [runner_f.run(xs)[0] for xs in inputs]
        after = [runner_q.run(xs)[0] for xs in inputs]
        m = accuracy.compare(before, after)
    except Exception as exc:  # noqa: BLE001 - no delta is better than a failed compile; the final check still runs
        return None, first_line(exc)[:160]
    return {"sqnr_db": m["sqnr_db"], "top1_agreement": m["top1_agreement"], "max_abs": m["max_abs"]}, ""


def _artifact_sensitivity(target: Target, src: Path, pending: PendingArtifactStep) -> dict[str, Any]:
    """Leave-one-out sensitivity of an artifact-stage quantizer, each variant run by the target's runner."""
    inputs = [list(xs) for xs in pending.calibration.inputs[:SENSITIVITY_INPUTS]]
    reference = [target.load(src, 1).run(xs)[0] for xs in inputs]
    with tempfile.TemporaryDirectory(prefix="edgest-sens-") as tmp:
        count = iter(range(1_000_000))

        def run(keep: tuple[str, ...]) -> list[np.ndarray]:
            dst = Path(tmp) / f"{src.stem}.{next(count)}{src.suffix}"
            pending.quantizer.quantize_artifact(src, dst, pending.calibration, keep)
            runner = target.load(dst, 1)
            outs = [runner.run(xs)[0] for xs in inputs]
            del runner
            _remove(dst)
            return outs

        assert pending.layers is not None
        result = sensitivity(run, reference, pending.layers, pending.skip)
    result["measured_on"] = f"the {target.name} runner, float vs quantised artifact, first {len(inputs)} calibration inputs"
    return result


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _replace(new: Path, old: Path) -> None:
    if old.is_dir():
        shutil.rmtree(old)
    elif old.exists():
        old.unlink()
    new.rename(old)
