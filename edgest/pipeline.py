"""``compile(plan)``: the orchestrator over the stages.

build → capture → passes → lower → quantize (artifact stage) → checks → report. Each stage is a
function of records in and records out (:mod:`edgest.stages`, :mod:`edgest.quantize.stage`,
:mod:`edgest.checks.run`); this module only orders them, times them, and makes the run folder
appear once everything in it is written (:func:`edgest.outdir.staged_output`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest import resources
from edgest.data.tasks import TASK_FIRST_CLIP, TASK_SAMPLES, TaskSet, task_set  # noqa: F401 - historic import path
from edgest.outdir import staged_output
from edgest.plan import PassArg, Plan, parse_shape, plan  # noqa: F401 - parse_shape: historic import path
from edgest.provenance import shared_provenance
from edgest.records import Report
from edgest.report import write_reports

if TYPE_CHECKING:
    import torch


#: called with (stage name, "start" | "end", seconds so far in that stage) — progress displays hook in here
StageListener = Callable[[str, str, float], None]


class _Stages:
    """Times each stage and tells the listener when one starts and ends."""

    def __init__(self, listener: StageListener | None) -> None:
        self.seconds: dict[str, float] = {}
        self.listener = listener

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.listener:
            self.listener(name, "start", 0.0)
        t0 = time.perf_counter()
        with shared_provenance():  # toolchains' passes share node provenance instead of copying it (edgest.provenance)
            yield
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - t0, 3)
        if self.listener:
            self.listener(name, "end", self.seconds[name])


def run(plan: Plan, on_stage: StageListener | None = None) -> Report:
    """Run ``plan``'s stages and write its run folder; return the report (also in ``report.json``)."""
    from edgest.checks.ready import ready_worker
    from edgest.checks.run import roll_up, run_checks
    from edgest.model_options import compiled_stats
    from edgest.report.weights import weights_record
    from edgest.stages import build, lower, transform

    stage = _Stages(on_stage)
    with stage("build"):
        built = build.build(plan)
    resources.check_free_disk(plan.out_dir.parent, resources.weight_bytes(built.module), "the artifact")
    # the check process starts now and imports its runtime while the artifact is made (edgest.checks.ready)
    with staged_output(plan.out_dir, force=plan.force) as folder, ready_worker(plan.target, plan.checks.threads) as ready:
        with stage("capture"):
            program, example = transform.capture_program(plan, built)
        coverage = {}
        if plan.coverage:
            with stage("coverage"):
                coverage = _coverage(plan, program)
        with stage("passes"):
            done = transform.run_passes(plan, program, example, built)
        with stage("lower"):
            lowered = lower.lower(plan, done, folder)
        with stage("quantize"):
            lowered, records = lower.quantize_artifact(plan, done, lowered, built)
        compile_s = sum(stage.seconds.get(s, 0.0) for s in ("capture", "passes", "lower", "quantize"))
        artifact = lower.artifact_record(plan, lowered, records, compile_s)
        with stage("checks"):
            checks = run_checks(plan, lowered.path, built, records, ready)
        with stage("report"):
            report = Report(
                status=roll_up(checks), model=plan.spec, target=artifact.target, precision=plan.precision,
                artifact=artifact, passes=records, checks=checks, error="; ".join(c.reason for c in checks if c.reason),
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), run_dir=str(plan.out_dir),
                stage_seconds=dict(stage.seconds), weights=built.weights or weights_record(plan.weights),
                model_stats=compiled_stats(plan.model, plan.spec, None if built.streaming else built.module),
                streaming=built.streaming.interface if built.streaming else {}, coverage=coverage,
            )
            write_reports(report, folder)
            if built.streaming:  # the step interface an app developer reads (edgest.streaming.spec)
                from edgest.streaming.spec import write_interface

                write_interface(folder, report, built.streaming)
            # eager outputs on the seeded inputs: what a device bundle compares against (small: outputs only)
            np.savez(folder / "reference.npz", **{f"s{i}": r for i, r in enumerate(built.reference)})
    return report


def _coverage(plan: Plan, program: torch.export.ExportedProgram) -> dict[str, Any]:
    """The compiled target's op coverage of the captured program, for the report (``compile --coverage``)."""
    from edgest.preflight import cached_ask
    from edgest.report.coverage import report_coverage

    return report_coverage(cached_ask(plan.target, program, plan.precision))


def compile(model: str | torch.nn.Module | Plan, target: str | None = None, *args: Any,
            on_stage: StageListener | None = None, **kwargs: Any) -> Report:
    """Compile ``model`` for ``target``, check it against eager PyTorch, and write the run folder.

    ``model`` may be a :class:`~edgest.plan.Plan` (then the other arguments are not used), or
    what :func:`edgest.plan.plan` takes to make one. Returns the report (also written as
    ``report.json``/``report.md`` in the run folder, whose path is ``report.run_dir``). Raises an
    :class:`~edgest.errors.EdgestError` for bad input, unsupported models and missing runtimes;
    a failed check is a report with status ``failed``, not an exception.

    For models that take ``B,C,T,H,W`` clips or ``B,L,C`` sequences, the accuracy check also runs
    ``task_samples`` labelled synthetic inputs (:func:`edgest.data.tasks.task_set`; 0 turns it off)
    through eager and the artifact and reports task top-1 of both. The drop is judged
    (``accuracy.TASK_LIMITS``) only when ``weights`` are given: with random initial weights task
    top-1 is chance level. None means :data:`~edgest.data.tasks.TASK_SAMPLES` with weights and 0
    without (the CLI reports it either way).

    ``precision`` None means the target's :attr:`~edgest.target.Target.default_precision`
    (fp32, except Core ML: fp16); a float precision given here overrides a target's own default.
    A failed check at fp16/bf16/int8 says whether eager PyTorch at that precision (or the quantize
    pass alone) loses as much (:mod:`edgest.checks.attribution`). ``on_stage`` hears each stage's
    start and end. ``model_options`` build a variant of a registered model (``{"num_frames": 8}``;
    :mod:`edgest.model_options`); the report's ``model_stats`` gives its parameters and MACs.
    """
    if isinstance(model, Plan):
        return run(model, on_stage)
    if target is None:
        from edgest.errors import BadInput

        raise BadInput("compile() needs a target name, e.g. compile('squeezetime_tiny', 'onnx')")
    return run(plan(model, target, *args, **kwargs), on_stage)
