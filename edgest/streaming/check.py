"""The streaming check: the step artifact over whole sequences, its own state fed back, against the parallel model.

Judged like the accuracy check, with the precision's limits (:data:`edgest.checks.accuracy.LIMITS`):
the worst per-step SQNR of the streamed outputs against the parallel model's per-step outputs, and
top-1 agreement over every step of every sequence. Reported beside them: SQNR and top-1 agreement
per step, the drift (SQNR and max abs error at the first and at the last step), the eager step
module's own figures (how exact the step form is before lowering), task top-1 at the last step on
the labelled sequences, and the per-step latency with its real-time factor at the model's hop
(:func:`latency_metrics`). NumPy only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.checks import accuracy
from edgest.records import CheckResult

if TYPE_CHECKING:
    from edgest.checks.isolated import ChildOutcome
    from edgest.streaming.build import StreamData


def per_step(reference: list[np.ndarray], outputs: list[np.ndarray]) -> list[dict[str, float]]:
    """:func:`edgest.checks.accuracy.compare` at each step, over the sequences (arrays with the step axis first)."""
    steps = min(len(r) for r in reference)
    return [accuracy.compare([r[t] for r in reference], [o[t] for o in outputs]) for t in range(steps)]


def stream_metrics(reference: list[np.ndarray], outputs: list[np.ndarray]) -> dict[str, Any]:
    """Pooled, per-step and drift figures of streamed ``outputs`` against the parallel ``reference``."""
    for r, o in zip(reference, outputs):
        if np.shape(r) != np.shape(o):
            raise ValueError(f"streamed outputs of shape {np.shape(o)} differ from the reference {np.shape(r)}")
    steps = per_step(reference, outputs)
    pooled = accuracy.compare(reference, outputs)
    worst = min(steps, key=lambda m: m["sqnr_db"])
    out: dict[str, Any] = {
        "sqnr_db": worst["sqnr_db"], "top1_agreement": pooled["top1_agreement"], "max_abs": pooled["max_abs"],
        "cosine": pooled["cosine"], "sqnr_db_pooled": pooled["sqnr_db"], "worst_step": steps.index(worst),
        "steps": len(steps), "sequences": len(reference),
        "per_step_sqnr_db": [round(m["sqnr_db"], 3) for m in steps],
        "per_step_top1_agreement": [m["top1_agreement"] for m in steps],
        "first_step_sqnr_db": steps[0]["sqnr_db"], "last_step_sqnr_db": steps[-1]["sqnr_db"],
        "first_step_max_abs": steps[0]["max_abs"], "last_step_max_abs": steps[-1]["max_abs"],
        "drift_db": round(steps[0]["sqnr_db"] - steps[-1]["sqnr_db"], 3),
        "last_step_top1_agreement": steps[-1]["top1_agreement"],
    }
    if pooled.get("nonfinite"):
        out["nonfinite"] = pooled["nonfinite"]
    return out


def latency_metrics(figures: dict[str, Any] | None, step_seconds: float, load: dict[str, float]) -> dict[str, Any]:
    """Per-step p50/p90, cold load, and the real-time factor (p50 / hop: below 1 keeps up with the stream)."""
    if not figures:
        return {}
    hop_ms = step_seconds * 1e3
    out = {"step_p50_ms": figures["p50_ms"], "step_p90_ms": figures["p90_ms"], "step_runs": figures["runs"],
           "hop_ms": hop_ms, "cold_load_ms": load.get("cold_load_ms")}
    if hop_ms > 0:
        out["real_time_factor"] = figures["p50_ms"] / hop_ms
        out["real_time_factor_p90"] = figures["p90_ms"] / hop_ms
    return out


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
