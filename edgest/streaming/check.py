"""The streaming check: the step artifact over whole sequences, its own state fed back, against the parallel model.

Judged like the accuracy check, with the precision's limits (:data:`edgest.checks.accuracy.LIMITS`):
the worst per-step SQNR of the streamed outputs against the parallel model's per-step outputs, and
top-1 agreement over every step of every sequence. Reported beside them: SQNR and top-1 agreement
per step, the drift (SQNR and max abs error at the first and at the last step), the eager step
module's own figures (how exact the step form is before lowering), task top-1 at the last step on
the labelled sequences, and the per-step latency with its real-time factor at the model's hop
(:func:`latency_metrics`). NumPy only; the figures themselves come from
:mod:`edgest.streaming.stepping`, which device bundles carry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.checks import accuracy
from edgest.records import CheckResult
from edgest.streaming.stepping import latency_metrics, per_step, stream_metrics

__all__ = ["latency_metrics", "per_step", "state_outputs", "stream_metrics", "streaming_check"]

if TYPE_CHECKING:
    from edgest.checks.isolated import ChildOutcome
    from edgest.streaming.build import StreamData


def _task(data: StreamData, outputs: list[np.ndarray]) -> dict[str, Any]:
    """Task top-1 at the last step (the whole-input prediction) on the labelled sequences, eager and artifact."""
    n = len(data.labels)
    if not n:
        return {}
    m = accuracy.task_top1([r[-1] for r in data.reference[-n:]], [o[-1] for o in outputs[-n:]], data.labels)
    return {f"last_step_{k}": v for k, v in m.items()} | {"labelled_sequences": n, "task_set": data.task_source}


def state_outputs(acc: CheckResult, ref_sets: list[list[np.ndarray]] | None, outcome: ChildOutcome) -> CheckResult:
    """The step accuracy check (judged on ``out_t``) with every output's figures beside it, states included.

    One step's state error is judged by what it does to the steps after it (the streaming check); a
    state vector's argmax means nothing, so its top-1 agreement is no limit here.
    """
    from dataclasses import replace

    if not ref_sets or outcome.outputs is None or acc.status == "run_failed":
        return acc
    try:
        per = accuracy.compare_multi(ref_sets, outcome.outputs[:len(ref_sets)])["per_output"]
    except (ValueError, KeyError):
        return acc
    note = "out_t (output 0); the state outputs are informative here and judged over whole sequences by the streaming check"
    return replace(acc, metrics={**acc.metrics, "per_output": per, "outputs": len(per), "judged_outputs": note})


def streaming_check(data: StreamData, outcome: ChildOutcome, limits: dict[str, float], seed: int) -> CheckResult:
    """Judge the child's streamed outputs against the parallel model under ``limits``."""
    from edgest.host import describe as describe_host

    if outcome.unavailable:
        return CheckResult("streaming", "not_run", limits=limits, reason=outcome.unavailable)
    run = outcome.streaming or {}
    if outcome.stream_outputs is None or "error" in run:
        return CheckResult("streaming", "run_failed", limits=limits,
                           reason=run.get("error") or outcome.failure or "the streaming run returned no outputs")
    try:
        m = stream_metrics(data.reference, outcome.stream_outputs)
        m.update(_task(data, outcome.stream_outputs))
    except ValueError as exc:
        return CheckResult("streaming", "failed", limits=limits, reason=str(exc))
    m.update({f"eager_step_{k}": v for k, v in data.eager.items()}, seed=seed,
             **latency_metrics(run.get("latency"), data.interface["step_seconds"], outcome.load))
    broken = accuracy.within(m, limits)
    host = {**describe_host(), **({"runtime": outcome.label} if outcome.label else {})}
    vacuous = accuracy.constant_reference([r[-1] for r in data.reference])
    if vacuous and not broken:
        return CheckResult("streaming", "not_run", m, limits, host,
                           f"not judged: {vacuous}, so any artifact returning that constant would match; "
                           "compile with trained --weights (weights=)")
    reason = "; ".join(f"streaming: {b}" for b in broken)
    return CheckResult("streaming", "failed" if broken else "passed", m, limits, host, reason)
