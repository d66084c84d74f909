"""The build stage of a ``--streaming`` compile: the step module and what every later stage runs it on.

The whole model is built (with the plan's weights) and its step module taken from it
(:func:`edgest.streaming.spec.step_module`). Seeded whole inputs (and the labelled ones, when the
plan has a task set) become sequences of step inputs; the parallel model gives each its per-step
reference. Streaming them through the eager step module gives step inputs with the states a live
stream reaches: the capture example, the accuracy check's inputs (spread over the sequence) and
the int8 calibration set (every step of the calibration inputs, at most :data:`CALIBRATION_STEPS`)
come from there, not from zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.checks import accuracy
from edgest.checks.eager import eager_output_sets
from edgest.streaming import spec as stream_spec

if TYPE_CHECKING:
    import torch

    from edgest.data.calibration import CalibrationSet
    from edgest.data.tasks import TaskSet
    from edgest.plan import Plan

#: random whole sequences the streaming check runs (labelled ones come on top)
SEQUENCES = 4
#: int8 calibration: at most this many step inputs (every step of the calibration inputs, spread over them
#: when there are more); see :func:`_calibration`
CALIBRATION_STEPS = 256
#: at most this many of the labelled samples (with weights, or --eval) are streamed too: step by step
#: they cost a runtime call per step, and a video's steps are whole frames
LABELLED = 64


@dataclass(frozen=True)
class StreamData:
    """Whole sequences as step inputs, the parallel model's per-step reference, and the step interface."""

    interface: dict[str, Any]
    #: per sequence: its step inputs, step axis first
    sequences: list[np.ndarray]
    #: per sequence: the parallel model's per-step outputs, step axis first
    reference: list[np.ndarray]
    init: list[np.ndarray]
    #: labels of the last ``len(labels)`` sequences (the labelled ones)
    labels: list[np.ndarray] = field(default_factory=list)
    #: the eager step module streamed against the parallel model (how exact the step form is before lowering)
    eager: dict[str, float] = field(default_factory=dict)
    calibration: CalibrationSet | None = None
    task_source: str = ""


def _stream_eager(step: torch.nn.Module, xs: np.ndarray, init: list[np.ndarray]) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Run ``step`` over step inputs ``xs`` from ``init``; its per-step first outputs and every step's inputs."""
    import torch

    state, outs, seen = [torch.from_numpy(a) for a in init], [], []
    with torch.no_grad():
        for x in xs:
            seen.append([np.ascontiguousarray(x), *(s.numpy().copy() for s in state)])
            y = step(torch.from_numpy(np.ascontiguousarray(x)), *state)
            outs.append(y[0].numpy())
            state = list(y[1:])
    return np.stack(outs), seen


def _spread(pool: list[list[list[np.ndarray]]], count: int) -> list[list[np.ndarray]]:
    """``count`` step inputs taken round-robin over the sequences, at positions spread from first to last step."""
    flat = [(i, t) for t in range(max(len(p) for p in pool)) for i in range(len(pool)) if t < len(pool[i])]
    idx = np.linspace(0, len(flat) - 1, num=min(count, len(flat))).round().astype(int)
    picks = [flat[k] for k in idx]
    return [pool[i][t] for i, t in picks]


def stream_data(plan: Plan, step: torch.nn.Module, task: TaskSet | None) -> tuple[StreamData, list[list[np.ndarray]]]:
    """The sequences, their reference, the interface and calibration set; and the accuracy check's step inputs."""
    import torch

    spec, settings = plan.spec, plan.checks
    whole = [x[0] for x in accuracy.seeded_inputs([spec.input.shape], SEQUENCES, settings.seed)]
    labelled = min(len(task.inputs), LABELLED) if task is not None else 0
    whole += [task.inputs[i][0] for i in range(labelled)] if task is not None else []
    init = [t.numpy() for t in step.init_state(spec.input.shape[0])]
    seqs, refs, eager, pool = [], [], [], []
    with torch.no_grad():
        for x in whole:
            xt = torch.from_numpy(np.asarray(x))
            seqs.append(step.steps(xt).contiguous().numpy())
            refs.append(np.moveaxis(step.reference(xt).numpy(), 1, 0))
            out, seen = _stream_eager(step, seqs[-1], init)
            eager.append(out)
            pool.append(seen)
    accuracy.check_finite(refs, f"the parallel reference of model '{spec.name}'")
    m = accuracy.compare(refs, eager)
    checked = _spread(pool, settings.samples)
    first = eager_output_sets(step, [checked[0]], f"the step module of '{spec.name}'")[0]
    iface = stream_spec.interface(step, checked[0][0], init, first, len(seqs[0]))
    data = StreamData(iface, seqs, refs, init, list(task.labels[:labelled]) if task is not None else [],
                      {"sqnr_db": m["sqnr_db"], "max_abs": m["max_abs"], "top1_agreement": m["top1_agreement"]},
                      _calibration(plan, step, init), f"the first {labelled} of {task.source}" if task is not None else "")
    return data, checked


def _calibration(plan: Plan, step: torch.nn.Module, init: list[np.ndarray]) -> CalibrationSet | None:
    """For int8: the quantize pass's ``calibration_size`` calibration inputs (synthetic or the user's, whole
    inputs, as a whole-input compile calibrates on) streamed through the eager step module; every step they
    give, each with the state it had, up to :data:`CALIBRATION_STEPS` spread over them.

    Every step, not ``calibration_size`` of them: a step sees one frame or hop, so a few dozen steps
    leave activation ranges that the rest of a stream exceeds. Trained lmuformer_video_tiny, ExecuTorch,
    streamed in eager PyTorch: worst step 9.3 dB calibrated on 32 steps of 4 clips (what this took
    before), 14.0 dB on 32 steps of 32 clips, 22.7 dB on 128 of them, 25.1 dB on all 256. More than
    :data:`CALIBRATION_STEPS` are not better everywhere: ONNX Runtime's min-max ranges only widen
    (trained lmuformer_tiny, 32 sequences of 16 steps: the step accuracy check at 38.4 dB on 256 of the
    512 steps, 33.4 dB on all of them).
    """
    import torch

    from edgest.data.calibration import DEFAULT_SIZE, CalibrationSet, calibration_inputs

    opts = next((dict(p.options) for p in plan.passes if p.name == "quantize"), None)
    if opts is None:
        return None
    size = int(opts.get("calibration_size") or DEFAULT_SIZE)
    whole = calibration_inputs(plan.spec, size, opts.get("calibration"), plan.checks.seed)
    with torch.no_grad():
        pool = [_stream_eager(step, step.steps(torch.from_numpy(np.asarray(x[0]))).contiguous().numpy(), init)[1]
                for x in whole.inputs]
    picks = _spread(pool, CALIBRATION_STEPS)
    return CalibrationSet([tuple(c) for c in picks], f"{len(picks)} streamed steps (with the states they reach) of "
                          f"{len(pool)} whole inputs: {whole.source}")
