"""The quantisation stage: one home for what ``--precision int8`` does.

* :func:`with_quantize_pass` puts the ``quantize`` pass (scheme int8, last) into a plan's passes.
* :func:`quantize_program` runs where the ``quantize`` pass stands among the passes: a
  program-stage quantizer returns a new program; an artifact-stage one returns an
  :class:`~edgest.quantize.contract.ArtifactStep` that the orchestrator hands to
  :func:`quantize_artifact` after ``lower``. Nothing is kept on the pass between stages.
* :func:`quantize_artifact` writes the quantised artifact in place of the float one; its delta
  (float vs quantised artifact) and sensitivity runs load the runtime only in an isolated
  check process, one for all of them (:class:`edgest.checks.session.CheckSession`).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput, EdgestError, Unsupported
from edgest.quantize.contract import PASS_NAME, PRECISION, SCHEMES, ArtifactStep, ProgramQuantizer
from edgest.quantize.sensitivity import quantizable_layers, sensitivity, sensitivity_inputs

if TYPE_CHECKING:
    import numpy as np
    import torch

    from edgest.checks.session import CheckSession
    from edgest.passes.base import Pass, PassContext, PassResult
    from edgest.plugins import Registry
    from edgest.records import PassRecord
    from edgest.target import Lowered, Target


def with_quantize_pass(passes: Sequence[Pass], precision: str, registry: Registry) -> list[Pass]:
    """Add ``quantize`` (scheme int8, last) for precision int8 unless listed; refuse it for other precisions."""
    count = sum(p.name == PASS_NAME for p in passes)
    if count > 1:  # the second ran on the first's deferred marker: one quantisation, two report entries
        raise BadInput(f"pass '{PASS_NAME}' is listed {count} times; give it once (its options say how to quantise)")
    listed = count == 1
    if listed and precision != PRECISION:
        raise BadInput(
            f"pass '{PASS_NAME}' makes an int8 model; add --precision {PRECISION} (precision='{PRECISION}') "
            "so the accuracy check uses the int8 limits"
        )
    if precision == PRECISION and not listed:
        return [*passes, registry.pass_(PASS_NAME)(scheme=PRECISION)]
    return list(passes)


def _quantizer(target: Target, scheme: str) -> Any:
    quantizer = target.quantizer(scheme)
    if quantizer is None:
        schemes = [s for s in SCHEMES if target.quantizer(s) is not None]
        raise Unsupported(
            f"target '{target.name}' has no {scheme} quantizer; supported precisions: {', '.join(target.precisions)}"
            + (f"; quantisation schemes: {', '.join(schemes)}" if schemes else "")
        )
    return quantizer


def quantize_program(options: dict[str, Any], program: torch.export.ExportedProgram,
                     ctx: PassContext) -> tuple[PassResult, ArtifactStep | None]:
    """Run the target's quantizer for the ``quantize`` pass ``options`` on ``program``.

    Returns the pass result and, for an artifact-stage quantizer, the step to run after ``lower``.
    """
    from edgest.data.calibration import calibration_inputs
    from edgest.passes.base import PassResult
    from edgest.records import InputSpec

    target, scheme = ctx.target, options["scheme"]
    quantizer = _quantizer(target, scheme)
    spec = ctx.options.get("spec")
    if spec is None:  # a PassContext built by hand: only the example's shape is known
        shape = tuple(ctx.example_inputs[0].shape)
        spec = InputSpec(shape, layout="B,C,T,H,W" if len(shape) == 5 and shape[1] == 3 else "")
    # a streaming compile hands over its own set: the calibration inputs streamed, steps with the states they reach
    calib = ctx.options.get("calibration_set") or calibration_inputs(spec, options["calibration_size"], options["calibration"],
                                                                    ctx.options.get("seed", 0))
    if ctx.options.get("calibration_set") is not None:  # a step program (x_t, *state): its recurrence stays float
        quantizer.states = max(len(ctx.example_inputs) - 1, 0)
    skip = tuple(options["skip"])
    details = {"scheme": scheme, "stage": quantizer.stage, "quantizer": type(quantizer).__name__,
               "calibration": calib.source, "calibration_size": len(calib), "skip": list(skip),
               **({"state_inputs": quantizer.states} if quantizer.states else {})}
    layers = quantizable_layers(program, skip, quantizer.states) if options.get("sensitivity") else None
    if not isinstance(quantizer, ProgramQuantizer):
        summary = (f"{scheme} deferred to after lowering ({type(quantizer).__name__}); "
                   f"calibrating on {len(calib)} inputs: {calib.source}")
        return PassResult(program, False, summary, {"quantization": details}), ArtifactStep(quantizer, calib, skip, details, layers)
    done = quantizer.quantize_program(program, ctx.example_inputs, calib, skip)
    if done.program is None:
        raise Unsupported(f"the {target.name} {scheme} quantizer returned no program")
    details.update(done.details)
    extra = {}
    if layers is not None:
        extra["sensitivity"] = _program_sensitivity(quantizer, program, done.program, ctx.example_inputs, calib, skip, layers)
    summary = f"{done.summary}; calibrated on {len(calib)} inputs: {calib.source}"
    return PassResult(done.program, True, summary, {"quantization": {**details, **extra}, **extra}), None


def _program_sensitivity(quantizer: ProgramQuantizer, program: torch.export.ExportedProgram,
                         quantized: torch.export.ExportedProgram, example: tuple[Any, ...], calib: Any,
                         skip: tuple[str, ...], layers: tuple[str, ...]) -> dict[str, Any]:
    """Leave-one-out sensitivity of a program-stage quantizer, run in eager PyTorch on the first calibration inputs."""
    from edgest.checks.eager import eager_outputs

    inputs = sensitivity_inputs(calib.inputs)

    def run(keep: tuple[str, ...]) -> list[Any]:
        done = quantizer.quantize_program(program, example, calib, keep)
        return eager_outputs(done.program.module(), inputs)

    result = sensitivity(run, eager_outputs(program.module(), inputs), layers, skip, eager_outputs(quantized.module(), inputs))
    result["measured_on"] = f"eager PyTorch with the quantised program, {len(inputs)} calibration inputs spread over the set"
    return result


def quantize_artifact(target: Target, lowered: Lowered, step: ArtifactStep, record: PassRecord,
                      inputs: Sequence[Sequence[np.ndarray]]) -> tuple[Lowered, PassRecord]:
    """After ``lower``: write the quantised artifact under the float one's name; return it and the pass's record.

    The record gets the artifact-level summary, its time and its accuracy delta (float artifact
    vs quantised artifact on ``inputs``, both run by the target's runner in a child process).
    """
    from edgest.target import Lowered

    t0 = time.perf_counter()
    src = lowered.path
    dst = src.with_name(f"{src.stem}.{step.quantizer.scheme}{src.suffix}")
    try:
        done = step.quantizer.quantize_artifact(src, dst, step.calibration, step.skip)
    except EdgestError:
        raise
    except Exception as exc:  # noqa: BLE001
        from edgest.capture import describe_failure

        raise Unsupported(f"pass '{PASS_NAME}' failed on the {target.name} artifact: {describe_failure(exc)}") from exc
    from edgest.checks.session import check_session

    extra: dict[str, Any] = {}
    with check_session() as session:  # one check process for every run below (a crash costs only its run)
        delta, why = _artifact_delta(session, target, src, dst, inputs)
        if step.layers is not None:
            extra["sensitivity"] = _artifact_sensitivity(session, target, src, step)
    float_size = _size(src)
    _replace(dst, src)
    quant = {**step.details, **done.details, "stage": "artifact", "float_size_bytes": float_size,
             "accuracy_delta_measured": f"float artifact vs quantised artifact, {target.name} runner, {len(inputs)} check inputs",
             **extra}
    summary = (f"{done.summary}; calibrated on {len(step.calibration)} inputs: {step.calibration.source}; "
               f"applied after lowering, delta = float vs quantised {target.name} artifact" + (f" (not measured: {why})" if why else ""))
    record = dataclasses.replace(record, modified=True, seconds=round(record.seconds + time.perf_counter() - t0, 3),
                                 details={**record.details, "quantization": quant, **extra}, summary=summary, accuracy_delta=delta)
    return Lowered(lowered.path, {**lowered.details, "quantization": quant}), record


def _outputs_in_child(session: CheckSession, target: Target, path: Path,
                      inputs: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """First outputs of the artifact at ``path`` on ``inputs``, run by the target's runner in the session's check process."""
    outcome = session.run(target, path, inputs, threads=1)
    if outcome.outputs is None:
        raise RuntimeError(outcome.unavailable or outcome.failure or "no outputs")
    return [o[0] for o in outcome.outputs]


def _artifact_delta(session: CheckSession, target: Target, src: Path, dst: Path,
                    inputs: Sequence[Sequence[np.ndarray]]) -> tuple[dict[str, float] | None, str]:
    """Accuracy of the quantised artifact against the float one, or None and why it could not be measured."""
    from edgest.capture import first_line
    from edgest.checks import accuracy

    try:
        m = accuracy.compare(_outputs_in_child(session, target, src, inputs), _outputs_in_child(session, target, dst, inputs))
    except Exception as exc:  # noqa: BLE001 - no delta is better than a failed compile; the final check still runs
        return None, first_line(exc)[:160]
    return {"sqnr_db": m["sqnr_db"], "top1_agreement": m["top1_agreement"], "max_abs": m["max_abs"]}, ""


def _artifact_sensitivity(session: CheckSession, target: Target, src: Path, step: ArtifactStep) -> dict[str, Any]:
    """Leave-one-out sensitivity of an artifact-stage quantizer, each variant run by the target's runner in the session."""
    inputs = sensitivity_inputs(step.calibration.inputs)
    reference = _outputs_in_child(session, target, src, inputs)
    from edgest.outdir import temp_folder

    with temp_folder("edgest-sens-") as tmp:
        count = iter(range(1_000_000))

        def run(keep: tuple[str, ...]) -> list[np.ndarray]:
            dst = Path(tmp) / f"{src.stem}.{next(count)}{src.suffix}"
            step.quantizer.quantize_artifact(src, dst, step.calibration, keep)
            outs = _outputs_in_child(session, target, dst, inputs)
            _remove(dst)
            return outs

        assert step.layers is not None
        result = sensitivity(run, reference, step.layers, step.skip)
    result["measured_on"] = (f"the {target.name} runner in a check process, float vs quantised artifact, {len(inputs)} "
                             "calibration inputs spread over the set")
    return result


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _replace(new: Path, old: Path) -> None:
    _remove(old)
    new.rename(old)
