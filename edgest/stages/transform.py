"""Capture and pass stages: module rewrites, ``torch.export``, then each pass with its accuracy delta.

The ``quantize`` pass runs here too, through :func:`edgest.quantize.stage.quantize_program`;
an artifact-stage quantizer comes back as an :class:`~edgest.quantize.contract.ArtifactStep`
for the stage after ``lower``, instead of state left on the pass.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from edgest import progress
from edgest.capture import capture, describe_failure
from edgest.checks import accuracy
from edgest.checks.eager import eager_outputs
from edgest.errors import EdgestError, Unsupported
from edgest.passes.base import Pass, PassContext, PassResult
from edgest.quantize.contract import ArtifactStep
from edgest.records import PassRecord

if TYPE_CHECKING:
    import torch

    from edgest.plan import Plan
    from edgest.stages.build import Built


@dataclass(frozen=True)
class Transformed:
    """The program after every pass, their records, and what is left for after ``lower``."""

    program: torch.export.ExportedProgram
    example: tuple[Any, ...]
    records: tuple[PassRecord, ...] = ()
    artifact_step: ArtifactStep | None = None
    #: index in ``records`` of the pass that handed over ``artifact_step``
    artifact_step_record: int = -1
    #: what a program-stage quantizer did, for the artifact's details
    quantization: dict[str, Any] = field(default_factory=dict)


def capture_program(plan: Plan, built: Built) -> tuple[torch.export.ExportedProgram, tuple[Any, ...]]:
    """Let passes rewrite the module (``Pass.rewrite_module``), then capture it with ``torch.export``."""
    import torch

    example = tuple(torch.from_numpy(x) for x in built.inputs[0])
    module = built.module
    for p in plan.passes:
        try:
            swapped = p.rewrite_module(module, example)
        except EdgestError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise Unsupported(f"pass '{p.name}' failed while rewriting modules: {describe_failure(exc)}") from exc
        module = swapped if swapped is not None else module
    program = capture(module, example)
    if plan.passes:  # passes get their own copy; the captured program stays as torch.export made it
        with warnings.catch_warnings():  # torch 2.13 warns about its own LeafSpec when copying a program
            warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
            program = copy.deepcopy(program)
    return program, example


def _run_one(p: Pass, program: torch.export.ExportedProgram, ctx: PassContext) -> tuple[PassResult, ArtifactStep | None]:
    from edgest.passes.quantize import QuantizePass
    from edgest.quantize.stage import quantize_program

    if isinstance(p, QuantizePass):
        return quantize_program(dict(p.options), program, ctx)
    return p.run(program, ctx), None


def run_passes(plan: Plan, program: torch.export.ExportedProgram, example: tuple[Any, ...], built: Built) -> Transformed:
    """Run the plan's passes in order; each record carries the pass's accuracy delta vs the previous program."""
    calib = built.streaming.calibration if built.streaming is not None else None  # streamed steps (edgest.streaming.build)
    ctx = PassContext(plan.target, example, {"spec": plan.spec, "seed": plan.checks.seed,
                                             **({"calibration_set": calib} if calib is not None else {})})
    done = Transformed(program, example)
    before = built.reference
    for p in plan.passes:
        progress.detail(f"pass {p.name}")
        t0 = time.perf_counter()
        try:
            result, step = _run_one(p, done.program, ctx)
        except EdgestError:
            raise
        except Exception as exc:  # noqa: BLE001
            ran = ", ".join(r.name for r in done.records) or "none"
            raise Unsupported(f"pass '{p.name}' failed: {describe_failure(exc)} (passes that ran before it: {ran})") from exc
        seconds = time.perf_counter() - t0
        after = eager_outputs(result.program.module(), built.inputs)
        m = accuracy.compare(before, after)
        delta = {"sqnr_db": m["sqnr_db"], "top1_agreement": m["top1_agreement"], "max_abs": m["max_abs"]}
        details = dict(result.details)
        quant = details.pop("quantization", None)
        record = PassRecord(p.name, dict(p.options), result.modified, seconds, result.summary, delta, details)
        done = replace(done, program=result.program, records=(*done.records, record),
                       **({"quantization": quant} if quant is not None and step is None else {}),
                       **({"artifact_step": step, "artifact_step_record": len(done.records)} if step else {}))
        before = after
    return done
