"""The checks of one artifact, assembled: accuracy (random inputs + labelled samples), attribution, latency.

The labelled samples are the synthetic task set or the user's ``--eval`` clips; task top-1 and
top-5 of eager and of the artifact are reported, and the top-1 drop is judged against
:data:`edgest.checks.accuracy.TASK_LIMITS` (with trained weights).

:func:`run_checks` runs the artifact in the isolated child process once for outputs and timings,
judges them against eager PyTorch under the plan's precision limits, and says whose loss a failure
is (:mod:`edgest.checks.attribution`). :func:`roll_up` turns the checks into the report's status.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.checks import accuracy, attribution
from edgest.checks.isolated import ChildOutcome, run_in_child
from edgest.checks.latency import LatencyConfig
from edgest.host import describe as describe_host
from edgest.records import CheckResult, PassRecord, ReportStatus

if TYPE_CHECKING:
    from edgest.checks.ready import ReadyWorker
    from edgest.data.tasks import TaskSet
    from edgest.plan import Plan
    from edgest.stages.build import Built


def run_checks(plan: Plan, artifact: Path, built: Built, records: tuple[PassRecord, ...],
               ready: ReadyWorker | None = None) -> tuple[CheckResult, ...]:
    """Accuracy (and latency, unless the plan turns it off) of the artifact at ``artifact``; streaming for step modules.

    ``ready``: a check process started while the artifact was made (:mod:`edgest.checks.ready`).
    """
    settings = plan.checks
    stream = built.streaming
    if settings.latency is not None:
        _warn_oversubscribed(settings.threads)
    # the labelled samples ride along as extra inputs; the outputs are split again by count
    outcome = run_in_child(plan.target, artifact, built.judged_inputs, settings.threads, settings.latency, settings.timeout_s,
                           (stream.sequences, stream.init) if stream is not None else None, ready)
    task = built.task
    judged = task_judged(plan)
    limits = {**accuracy.LIMITS[plan.precision],
              **(accuracy.TASK_LIMITS.get(plan.precision, {}) if task and judged else {})}
    note = task_note(plan.precision, judged, limits)
    # a step module is judged on out_t; its state outputs matter through later steps, which the streaming check judges
    ref_sets = built.reference_sets if stream is None else None
    acc = accuracy_check(built.reference, outcome, limits, settings.seed, task, built.task_reference, note, ref_sets)
    acc = attribution.half_precision(acc, built.module, built.judged_inputs, built.judged_reference, plan.precision)
    acc = attribution.quantisation(acc, records)
    acc = attribution.float_ops(acc, plan.target, plan.precision, built.module, built.judged_inputs, built.judged_reference)
    checks = (acc,) if settings.latency is None else (acc, latency_check(outcome, settings.latency))
    if stream is None:
        return checks
    from edgest.streaming.check import state_outputs, streaming_check

    checks = (state_outputs(acc, built.reference_sets, outcome), *checks[1:])
    return (*checks, streaming_check(stream, outcome, accuracy.LIMITS[plan.precision], settings.seed))


#: thread counts already warned about in this process (a bench's cells say it once)
_WARNED: set[int] = set()


def _warn_oversubscribed(threads: int) -> None:
    """Say so (once per process) when the latency check runs more threads than this process may use: it then
    times contention."""
    import os

    from edgest import progress

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or threads)
    if threads > cores and threads not in _WARNED:
        _WARNED.add(threads)
        progress.warn(f"--threads {threads} is more than the {cores} core(s) this process may use: the latency "
                      "figures time threads contending for them; give at most that many")


def roll_up(checks: tuple[CheckResult, ...]) -> ReportStatus:
    """passed when every check passed; incomplete when the rest could not run here; else failed."""
    statuses = {c.status for c in checks}
    if statuses == {"passed"}:
        return "passed"
    return "incomplete" if statuses <= {"passed", "not_run"} else "failed"


def accuracy_check(ref: list[np.ndarray], outcome: ChildOutcome, limits: dict[str, float], seed: int,
                   task: TaskSet | None = None, task_ref: list[np.ndarray] | None = None, task_note: str = "",
                   ref_sets: list[list[np.ndarray]] | None = None) -> CheckResult:
    """Judge the child's outputs against eager's ``ref`` (and the labelled samples, pooled) under ``limits``.

    A model with several outputs (``ref_sets``) is judged on every one: the figures are the worst
    over the outputs, and ``per_output`` lists each (:func:`edgest.checks.accuracy.compare_multi`).
    """
    if outcome.unavailable:
        return CheckResult("accuracy", "not_run", limits=limits, reason=outcome.unavailable)
    if outcome.outputs is None:
        return CheckResult("accuracy", "run_failed", limits=limits, reason=outcome.failure or "no outputs")
    outputs = [o[0] for o in outcome.outputs]
    try:
        multi = ref_sets is not None and any(len(r) > 1 for r in ref_sets)
        m: dict[str, Any] = (accuracy.compare_multi(ref_sets, outcome.outputs[:len(ref)]) if multi
                             else accuracy.compare(ref, outputs[:len(ref)]))
        if task is not None and task_ref is not None:
            m.update(_task_metrics(m, ref, task, task_ref, outputs[len(ref):], outputs[:len(ref)]), task_note=task_note,
                     task_judged="max_task_top1_drop_pts" in limits)  # judged only with trained weights and a limit
    except ValueError as exc:
        return CheckResult("accuracy", "failed", limits=limits, reason=str(exc))
    m.update(samples=len(ref), seed=seed)
    broken = accuracy.within(m, limits)
    host = {**describe_host(), **({"runtime": outcome.label} if outcome.label else {})}  # what ran, if not the target's runtime
    vacuous = accuracy.constant_reference(ref)
    if vacuous and not broken:  # a match with a constant proves nothing: not a pass
        return CheckResult("accuracy", "not_run", m, limits, host,
                           f"not judged: {vacuous}, so the model ignores its input at these weights (at random "
                           "initialisation: EMOv2's 1e-6 layer scales, a spiking model that never fires) and any "
                           "artifact returning that constant would match; compile with trained --weights (weights=); edgest train --model NAME --out weights.pt makes some")
    return CheckResult("accuracy", "failed" if broken else "passed", m, limits, host, "; ".join(broken))


def _task_metrics(m: dict[str, Any], ref: list[np.ndarray], task: TaskSet, task_ref: list[np.ndarray],
                  outputs: list[np.ndarray], random_outputs: list[np.ndarray]) -> dict[str, Any]:
    """Task top-1 on the labelled samples, and the agreement figures pooled over random inputs and samples.

    Eight random inputs alone make agreement coarse (one flip is 12.5 pt), and a trained model's
    logits on noise are near-ties; the labelled samples are the inputs it was made for. The
    pooled figures (SQNR, max abs, cosine, top-1 agreement over every checked output) are the
    judged ones; both parts are reported. Noise is furthest from a threshold model's data: a
    trained spiking LMUFormer flips more spikes on it than on its own kind of input.
    """
    on_samples = accuracy.compare(task_ref, outputs)
    pooled = accuracy.compare(list(ref) + list(task_ref), list(random_outputs) + list(outputs))
    top5_eager, top5 = task_topk(task_ref, task.labels, 5), task_topk(outputs, task.labels, 5)
    return {**accuracy.task_top1(task_ref, outputs, task.labels), **pooled,
            "task_top5": top5, "task_top5_eager": top5_eager, "task_top5_drop_pts": round(100.0 * (top5_eager - top5), 6),
            "top1_agreement_inputs": m["top1_agreement"], "sqnr_db_inputs": m["sqnr_db"],
            "task_top1_agreement": on_samples["top1_agreement"], "task_sqnr_db": on_samples["sqnr_db"],
            "task_samples": sum(lab.size for lab in task.labels), "task_set": task.source, "task_set_kind": task.kind,
            **({"task_per_class": dict(task.per_class)} if task.per_class else {})}


def task_topk(outputs: list[np.ndarray], labels: list[np.ndarray], k: int) -> float:
    """Share of samples whose label is among the ``k`` highest scores (all of them when there are fewer classes)."""
    logits = np.concatenate([np.asarray(o).reshape(-1, np.asarray(o).shape[-1]) for o in outputs])
    y = np.concatenate([np.asarray(lab).ravel() for lab in labels])
    k = min(k, logits.shape[-1])
    best = np.argpartition(-logits, k - 1, axis=-1)[:, :k]
    return float(np.mean((best == y[:, None]).any(-1)))


def task_judged(plan: Plan) -> bool:
    """Whether the task drop is judged: with trained weights, or the user's own module on the user's own clips."""
    from edgest.model import ModelEntry

    own_module = not isinstance(plan.model, ModelEntry)
    return plan.trained or (own_module and plan.checks.eval_set is not None)


def task_note(precision: str, trained: bool, limits: dict[str, float]) -> str:
    """Why the task top-1 drop is, or is not, judged (``trained``: weights given, or the user's own module)."""
    if "max_task_top1_drop_pts" in limits:
        return f"judged: {precision} limit {limits['max_task_top1_drop_pts']:g} pt, trained weights"
    if not trained:
        return "not judged: random initial weights (task top-1 is chance level; give --weights, weights=)"
    return f"not judged: no task-accuracy limit for {precision}"


def latency_check(outcome: ChildOutcome, cfg: LatencyConfig) -> CheckResult:
    """The child's timings as a check (passed when measured: limits come from bench budgets, not here)."""
    limits = {"warmup": cfg.warmup, "min_runs": cfg.min_runs, "min_seconds": cfg.min_seconds}
    if outcome.unavailable:
        return CheckResult("latency", "not_run", limits=limits, reason=outcome.unavailable)
    if outcome.timing_unavailable:  # the runner ran but must not be timed (e.g. a reference interpreter)
        return CheckResult("latency", "not_run", limits=limits, reason=outcome.timing_unavailable)
    if outcome.latency is None:
        return CheckResult("latency", "run_failed", limits=limits, reason=outcome.failure or "no latency figures")
    metrics = {**outcome.latency, **outcome.load, "threads": outcome.threads}
    return CheckResult("latency", "passed", metrics, limits, describe_host())
