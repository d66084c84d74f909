"""``compile()``: build → capture → passes → lower → check → report.

Each stage returns new records; the run folder appears only once everything in it is written.
"""

from __future__ import annotations

import copy
import hashlib
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest import quantization
from edgest.capture import capture, describe_failure, first_line
from edgest.checks import accuracy, attribution
from edgest.checks.eager import eager_outputs
from edgest.checks.isolated import ChildOutcome, run_in_child
from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput, EdgestError, Unsupported
from edgest.host import describe as describe_host
from edgest.model import ModelEntry, is_model_file, load_user_model, load_weights
from edgest.outdir import check_output, staged_output
from edgest.passes.base import Pass, PassContext
from edgest.plugins import Registry, get_registry
from edgest.records import Artifact, CheckResult, InputSpec, ModelSpec, PassRecord, Report
from edgest.report import write_reports
from edgest.target import Target

if TYPE_CHECKING:
    import torch

PassArg = str | tuple[str, dict[str, Any]] | Pass


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x3x16x224x224"`` → ``(1, 3, 16, 224, 224)``; BadInput otherwise."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise BadInput(f"malformed input shape '{text}'; write it like 1x3x16x224x224") from None
    if not shape or any(d <= 0 for d in shape):
        raise BadInput(f"input shape '{text}' must be positive integers, like 1x3x16x224x224")
    return shape


def _resolve_model(model: str | torch.nn.Module, registry: Registry, input_shape: tuple[int, ...] | None) -> tuple[ModelSpec, torch.nn.Module]:
    import torch

    if isinstance(model, str) and is_model_file(model):
        if input_shape is None:
            raise BadInput(f"model file '{model}' needs --input-shape (e.g. 1x3x224x224)")
        model = load_user_model(model)
    if isinstance(model, torch.nn.Module):
        if input_shape is None:
            raise BadInput("a user nn.Module needs input_shape (e.g. input_shape=(1, 3, 224, 224))")
        spec = ModelSpec(name=type(model).__name__.lower(), family="user", input=InputSpec(input_shape), num_classes=0)
        return spec, model.eval()
    entry: ModelEntry = registry.model(model)
    spec = entry.spec
    if input_shape is not None:
        if len(input_shape) != len(spec.input.shape):
            raise BadInput(
                f"input shape {'x'.join(map(str, input_shape))} has {len(input_shape)} dims; model '{spec.name}' "
                f"takes {len(spec.input.shape)} ({spec.input.layout or 'default'} {'x'.join(map(str, spec.input.shape))})"
            )
        spec = ModelSpec(**{**spec.__dict__, "input": InputSpec(input_shape, spec.input.dtype, spec.input.layout)})
    return spec, entry.build()


def _normalise_passes(passes: Sequence[PassArg], registry: Registry) -> list[Pass]:
    out = []
    for p in passes:
        if isinstance(p, Pass):
            out.append(p)
        elif isinstance(p, tuple):
            out.append(registry.pass_(p[0])(**p[1]))
        else:
            out.append(registry.pass_(p)())
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _folder_size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _run_passes(program: Any, passes: list[Pass], ctx: PassContext, inputs: list[list[np.ndarray]], before: list[np.ndarray]) -> tuple[Any, list[PassRecord]]:
    records: list[PassRecord] = []
    for p in passes:
        t0 = time.perf_counter()
        try:
            result = p.run(program, ctx)
        except EdgestError:
            raise
        except Exception as exc:  # noqa: BLE001
            ran = ", ".join(r.name for r in records) or "none"
            raise Unsupported(f"pass '{p.name}' failed: {describe_failure(exc)} (passes that ran before it: {ran})") from exc
        seconds = time.perf_counter() - t0
        after = eager_outputs(result.program.module(), inputs)
        m = accuracy.compare(before, after)
        delta = {"sqnr_db": m["sqnr_db"], "top1_agreement": m["top1_agreement"], "max_abs": m["max_abs"]}
        records.append(PassRecord(p.name, dict(p.options), result.modified, seconds, result.summary, delta, dict(result.details)))
        program, before = result.program, after
    return program, records


def _rewrite_modules(module: Any, passes: list[Pass], example: tuple[Any, ...]) -> Any:
    """Let passes that work best on the nn.Module (e.g. swapping attention modules) do so before capture.

    The eager reference was taken from the untouched model, so the pass's accuracy delta
    covers this step too.
    """
    for p in passes:
        hook = getattr(p, "rewrite_module", None)
        if not callable(hook):
            continue
        try:
            swapped = hook(module, example)
        except EdgestError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise Unsupported(f"pass '{p.name}' failed while rewriting modules: {describe_failure(exc)}") from exc
        if swapped is not None:
            module = swapped
    return module


#: first clip index of the labelled task set: far past the clips ``edgest train`` trains and validates on,
#: and a multiple of 2..10 and of 35 (1,008,000 = 2^7 3^2 5^3 7), so labels start at class 0 for any class count
#: of the clip and sequence sets
TASK_FIRST_CLIP = 1_008_000
#: labelled clips per compile when weights are given and the caller names no count: one clip is
#: 0.39 pt of task top-1, so the 1-pt drop limit is resolved (64 clips made one flip a 1.56-pt failure)
TASK_SAMPLES = 256


@dataclass(frozen=True)
class TaskSet:
    """Labelled synthetic clips for task top-1: inputs per forward call, labels per call, and a description."""

    inputs: list[list[np.ndarray]]
    labels: list[np.ndarray]
    source: str


def task_set(spec: ModelSpec, count: int, seed: int) -> TaskSet | None:
    """``count`` labelled synthetic inputs at the model's input shape, or None where none fits the model.

    Motion clips for ``B,C,T,H,W`` models, keyword glides for ``B,L,C`` ones
    (:func:`~edgest.data.labelled.synthetic_set`), with the compile's seed, starting at sample
    :data:`TASK_FIRST_CLIP`, so neither training (``edgest train``) nor calibration saw them.
    """
    from edgest.data.labelled import describe, synthetic_set

    batch = spec.input.shape[0]
    data = synthetic_set(spec.input.shape, spec.input.layout, spec.num_classes, TASK_FIRST_CLIP + count * batch, seed)
    if count < 1 or spec.num_classes < 2 or data is None:
        return None
    inputs, labels = [], []
    for x, y in data.batches(batch, start=TASK_FIRST_CLIP):
        inputs.append([x])
        labels.append(y)
    return TaskSet(inputs, labels, f"{count * batch} {describe(data)}, samples {TASK_FIRST_CLIP}+")


def _accuracy_check(ref: list[np.ndarray], outcome: ChildOutcome, limits: dict[str, float], seed: int,
                    task: TaskSet | None = None, task_ref: list[np.ndarray] | None = None,
                    task_note: str = "") -> CheckResult:
    if outcome.unavailable:
        return CheckResult("accuracy", "not_run", limits=limits, reason=outcome.unavailable)
    if outcome.outputs is None:
        return CheckResult("accuracy", "run_failed", limits=limits, reason=outcome.failure or "no outputs")
    outputs = [o[0] for o in outcome.outputs]
    try:
        m: dict[str, Any] = accuracy.compare(ref, outputs[:len(ref)])
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
                           "artifact returning that constant would match; compile with trained --weights")
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
    return {**accuracy.task_top1(task_ref, outputs, task.labels), **pooled,
            "top1_agreement_inputs": m["top1_agreement"], "sqnr_db_inputs": m["sqnr_db"],
            "task_top1_agreement": on_samples["top1_agreement"], "task_sqnr_db": on_samples["sqnr_db"],
            "task_samples": sum(lab.size for lab in task.labels), "task_set": task.source}


def _task_note(precision: str, trained: bool, limits: dict[str, float]) -> str:
    """Why the task top-1 drop is, or is not, judged."""
    if "max_task_top1_drop_pts" in limits:
        return f"judged: {precision} limit {limits['max_task_top1_drop_pts']:g} pt, trained weights"
    if not trained:
        return "not judged: random initial weights (task top-1 is chance level; give --weights)"
    return f"not judged: no task-accuracy limit for {precision}"


def _latency_check(outcome: ChildOutcome, cfg: LatencyConfig) -> CheckResult:
    limits = {"warmup": cfg.warmup, "min_runs": cfg.min_runs, "min_seconds": cfg.min_seconds}
    if outcome.unavailable:
        return CheckResult("latency", "not_run", limits=limits, reason=outcome.unavailable)
    if outcome.timing_unavailable:  # the runner ran but must not be timed (e.g. a reference interpreter)
        return CheckResult("latency", "not_run", limits=limits, reason=outcome.timing_unavailable)
    if outcome.latency is None:
        return CheckResult("latency", "run_failed", limits=limits, reason=outcome.failure or "no latency figures")
    metrics = {**outcome.latency, **outcome.load, "threads": outcome.threads}
    return CheckResult("latency", "passed", metrics, limits, describe_host())


def compile(
    model: str | torch.nn.Module,
    target: str,
    passes: Sequence[PassArg] = (),
    weights: str | Path | None = None,
    input_shape: Sequence[int] | str | None = None,
    out_dir: str | Path | None = None,
    *,
    precision: str | None = None,
    target_options: dict[str, Any] | None = None,
    threads: int = 1,
    samples: int = 8,
    seed: int = 0,
    latency: LatencyConfig | None = LatencyConfig(),
    check_timeout_s: float = 600.0,
    force: bool = False,
    registry: Registry | None = None,
    task_samples: int | None = None,
) -> Report:
    """Compile ``model`` for ``target``, check it against eager PyTorch, and write the run folder.

    Returns the report (also written as ``report.json``/``report.md`` in ``out_dir``). Raises an
    :class:`~edgest.errors.EdgestError` for bad input, unsupported models and missing runtimes;
    a failed check is a report with status ``failed``, not an exception.

    For models that take ``B,C,T,H,W`` clips or ``B,L,C`` sequences, the accuracy check also runs
    ``task_samples`` labelled synthetic inputs (:func:`task_set`; 0 turns it off) through eager and the artifact
    and reports task top-1 of both. The drop is judged (``accuracy.TASK_LIMITS``) only when
    ``weights`` are given: with random initial weights task top-1 is chance level. None means
    :data:`TASK_SAMPLES` with weights and 0 without (the CLI reports it either way).

    ``precision`` None means the target's :attr:`~edgest.target.Target.default_precision`
    (fp32, except Core ML: fp16); a float precision given here overrides a target's own default.
    A failed check at fp16/bf16/int8 says whether eager PyTorch at that precision (or the quantize
    pass alone) loses as much (:mod:`edgest.checks.attribution`).
    """
    reg = registry or get_registry()
    model_name = model if isinstance(model, str) else type(model).__name__.lower()
    if isinstance(model, str) and is_model_file(model):
        model_name = Path(model.partition(":")[0]).stem
    target_cls: type[Target] = reg.target(target)
    if isinstance(model, str) and not is_model_file(model):
        reg.model(model)
    options = dict(target_options or {})
    if precision is None:  # a float precision given as the target's option, else the target's default
        given = options.get("precision")
        precision = given if given in ("fp32", "fp16", "bf16") else target_cls.default_precision
    pass_objs = quantization.plan(_normalise_passes(passes, reg), precision, reg)
    shape = parse_shape(input_shape) if isinstance(input_shape, str) else (tuple(input_shape) if input_shape else None)
    if samples < 1:
        raise BadInput("samples must be at least 1")
    if task_samples is None:
        task_samples = TASK_SAMPLES if weights is not None else 0
    if task_samples < 0:
        raise BadInput("task_samples must be 0 (off) or more")
    if precision not in accuracy.LIMITS:
        raise BadInput(f"unknown precision '{precision}'; available: {', '.join(accuracy.LIMITS)}")
    if precision not in target_cls.precisions:
        raise Unsupported(f"target '{target}' does not support precision '{precision}'; supported: {', '.join(target_cls.precisions)}")
    # float precisions are the target's own business (int8 goes through quantize): pass them on as its option
    if precision in ("fp32", "fp16", "bf16"):
        if options.get("precision", precision) != precision:
            raise BadInput(f"precision {precision} and target option precision={options['precision']} disagree; give one of them")
        if precision != "fp32" or "precision" in target_cls.option_table:
            options["precision"] = precision
    tgt = target_cls(**options)
    tgt.ensure_available()
    out = Path(out_dir) if out_dir else Path("edgest-out") / f"{model_name}-{target}"
    check_output(out, force)

    spec, module = _resolve_model(model, reg, shape)
    if weights is not None:
        load_weights(module, weights)
    inputs = accuracy.seeded_inputs([spec.input.shape], samples, seed)
    try:
        reference = eager_outputs(module, inputs)
    except Exception as exc:  # noqa: BLE001 - a shape the model cannot take
        raise BadInput(f"model '{spec.name}' cannot run on input {'x'.join(map(str, spec.input.shape))}: {first_line(exc)[:200]}") from None
    task = task_set(spec, task_samples, seed)
    task_ref = eager_outputs(module, task.inputs) if task else None

    import torch

    with staged_output(out, force=force) as stage:
        t0 = time.perf_counter()
        example = tuple(torch.from_numpy(x) for x in inputs[0])
        module = _rewrite_modules(module, pass_objs, example)
        program = capture(module, example)
        ctx = PassContext(tgt, example, {"spec": spec, "seed": seed})
        with warnings.catch_warnings():  # torch 2.13 warns about its own LeafSpec when copying a program
            warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
            program = copy.deepcopy(program) if pass_objs else program
        program, records = _run_passes(program, pass_objs, ctx, inputs, reference)
        try:
            lowered = tgt.lower(program, example, stage)
        except EdgestError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise Unsupported(f"target '{target}' cannot lower model '{spec.name}': {describe_failure(exc)}") from exc
        lowered, records = quantization.finish(pass_objs, records, tgt, lowered, inputs)
        compile_s = time.perf_counter() - t0
        artifact = Artifact(
            model=spec.name, target=target, path=lowered.path.name, format=target_cls.artifact_format,
            size_bytes=_folder_size(lowered.path), sha256=_sha256(lowered.path) if lowered.path.is_file() else "",
            passes=tuple(r.name for r in records), toolchain=target_cls.toolchain_versions(),
            details=lowered.details, compile_seconds=round(compile_s, 3),
        )
        # the labelled clips ride along as extra samples; the parent splits the outputs again
        checked, checked_ref = inputs + (task.inputs if task else []), reference + (task_ref or [])  # all that is judged
        outcome = run_in_child(tgt, lowered.path, checked, threads, latency, check_timeout_s)
        trained = weights is not None
        limits = {**accuracy.LIMITS[precision], **(accuracy.TASK_LIMITS.get(precision, {}) if task and trained else {})}
        acc = _accuracy_check(reference, outcome, limits, seed, task, task_ref, _task_note(precision, trained, limits))
        acc = attribution.quantisation(attribution.half_precision(acc, module, checked, checked_ref, precision), records)
        checks = [acc]
        if latency is not None:
            checks.append(_latency_check(outcome, latency))
        statuses = {c.status for c in checks}
        status = "passed" if statuses == {"passed"} else ("incomplete" if statuses <= {"passed", "not_run"} else "failed")
        report = Report(
            status=status, model=spec, target=target, precision=precision, artifact=artifact,
            passes=tuple(records), checks=tuple(checks),
            error="; ".join(c.reason for c in checks if c.reason),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        write_reports(report, stage)
        # eager outputs on the seeded inputs: what a device bundle compares against (small: outputs only)
        np.savez(stage / "reference.npz", **{f"s{i}": r for i, r in enumerate(reference)})
    return report
