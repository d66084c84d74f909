"""``edgest check``: capture a model once, then ask each target what it would do with every op.

The model is resolved, built and captured by the same stages a compile runs
(:func:`edgest.plan.plan`, :func:`edgest.stages.build.build`,
:func:`edgest.stages.transform.capture_program`); each target then answers
:meth:`~edgest.target.Target.coverage` on its own copy of the captured program. Nothing is
written and nothing is compiled; a target that cannot answer says so ("not known"), one whose
toolchain is missing is "unavailable", and one that fails while answering is "failed" with the
reason, without stopping the others.
"""

from __future__ import annotations

import copy
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest import coverage_cache
from edgest.coverage import Coverage, Preflight, not_known, program_ops
from edgest.errors import EdgestError
from edgest.provenance import shared_provenance
from edgest.target import Target

if TYPE_CHECKING:
    import torch

    from edgest.plugins import Registry


def capture_for_check(model: str | torch.nn.Module, input_shape: Sequence[int] | str | None = None,
                      model_options: dict[str, Any] | None = None,
                      registry: Registry | None = None) -> tuple[Any, torch.export.ExportedProgram]:
    """The model's resolved spec and its captured program, as a compile would capture them (fp32, no passes).

    The module is built (and given its weights) as :func:`edgest.stages.build.build` does, but
    eager PyTorch is not run on the check inputs: coverage needs the program, not reference
    outputs, and on a full-size video model those runs cost seconds.
    """
    from edgest.checks.accuracy import seeded_inputs
    from edgest.plan import plan
    from edgest.stages import transform
    from edgest.stages.build import Built, eager_sets_or_bad_input
    from edgest.weights import load_weights

    nowhere = Path(tempfile.gettempdir()) / "edgest-check-never-written"  # the plan needs a run folder; check writes none
    the_plan = plan(model, "eager", input_shape=input_shape, out_dir=nowhere, samples=1, latency=None,
                    task_samples=0, model_options=model_options, registry=registry)
    module = the_plan.build_module()
    if the_plan.weights is not None:
        load_weights(module, the_plan.weights, family=the_plan.spec.family, weights_format=the_plan.weights_format,
                     model_name=the_plan.spec.name)
    inputs = seeded_inputs([the_plan.spec.input.shape], 1, the_plan.checks.seed)
    try:
        with shared_provenance():
            program, _ = transform.capture_program(the_plan, Built(module, inputs, []))
    except EdgestError:
        eager_sets_or_bad_input(module, inputs, the_plan.spec)  # an input the model cannot take is named as such
        raise
    return the_plan.spec, program


def target_for_check(target_cls: type[Target], precision: str | None) -> Target | str:
    """The target instance at ``precision`` (as :func:`edgest.plan.plan` makes it), or why it cannot answer.

    An unavailable target is "unavailable" unless its coverage needs no runtime
    (:attr:`~edgest.target.Target.coverage_needs_runtime` False): then it is made all the same.
    """
    from edgest.plan import FLOAT_PRECISIONS, _target

    reason = target_cls.unavailable_reason()
    if reason and target_cls.coverage_needs_runtime:
        return f"unavailable: {reason}"
    if precision is not None and precision not in target_cls.precisions:
        return f"skipped: no precision {precision} (it supports {', '.join(target_cls.precisions)})"
    try:
        return _target(target_cls, precision if precision in FLOAT_PRECISIONS else target_cls.default_precision, {},
                       available=not reason)
    except EdgestError as exc:
        return f"failed: {exc}"


def no_coverage(target: Target) -> Coverage | None:
    """"not known" for a target that keeps the contract's default ``coverage`` (nothing to ask); None otherwise."""
    if type(target).coverage is Target.coverage:
        return not_known(target.name, f"target '{target.name}' does not report op coverage")
    return None


def ask(target: Target, program: torch.export.ExportedProgram, precision: str | None, private: bool = False) -> Coverage:
    """``target.coverage`` on a copy of ``program`` (``private``: on ``program`` itself, nobody else's);
    None (or the contract's default) becomes "not known", an exception "failed"."""
    from edgest.capture import first_line
    from edgest.quiet import quiet_loggers

    unasked = no_coverage(target)
    if unasked is not None:
        return unasked
    mine = program if private else shared_weights_copy(program)
    try:
        # a toolchain's imports log chatter (torchao's kernels, pytree's enums); its passes share node provenance
        with quiet_loggers(), shared_provenance():
            answer = target.coverage(mine)
    except Exception as exc:  # noqa: BLE001 - one target failing to answer must not hide the others
        return not_known(target.name, f"coverage failed: {type(exc).__name__}: {first_line(exc)[:200]}", "failed")
    if answer is None:
        return not_known(target.name, f"target '{target.name}' does not report op coverage")
    if not target.coverage_needs_runtime and (reason := target.unavailable_reason()):
        answer = replace(answer, note=f"{answer.note + '; ' if answer.note else ''}runtime unavailable here: {reason}")
    if precision == "int8":
        answer = Coverage(answer.target, answer.ops, (answer.note + "; " if answer.note else "")
                          + "int8: verdicts for the float graph (ops the quantizer leaves float are not marked)",
                          answer.status)
    return answer


def shared_weights_copy(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """A copy of ``program``'s graph, signature and metadata that shares its weight tensors (no toolchain writes
    into those in place; copying them cost seconds per target on a full-size model)."""
    tensors = [*program.state_dict.values(), *program.constants.values()]
    memo = {id(t): t for t in tensors if hasattr(t, "data_ptr")}
    with warnings.catch_warnings():  # torch warns about its own LeafSpec when copying a program
        warnings.simplefilter("ignore")
        return copy.deepcopy(program, memo)


def check(model: str | torch.nn.Module, targets: Sequence[str] | None = None, *, precision: str | None = None,
          input_shape: Sequence[int] | str | None = None, model_options: dict[str, Any] | None = None,
          registry: Registry | None = None, on_target: Callable[[str], None] | None = None, jobs: int = 1,
          use_cache: bool = True) -> Preflight:
    """Capture ``model`` once and ask each of ``targets`` (None: every registered one) for its op coverage.

    ``precision`` None asks each target at its default precision; a precision a target lacks
    makes its column "skipped" (``edgest check`` refuses instead when every target named lacks it:
    :func:`check_named_precision`). ``jobs`` above 1 asks the targets in that many child processes at
    once (each forked from this one after the capture, so only its toolchain is imported again). With
    ``use_cache`` an answer kept from an earlier ask of the same program, target, toolchain and code
    (:mod:`edgest.coverage_cache`) is reused, and new ``known`` answers are kept. Raises an
    :class:`~edgest.errors.EdgestError` for a bad model, shape, option or target name; a target
    that cannot answer is recorded, not raised.
    """
    from edgest.plugins import get_registry

    reg = registry or get_registry()
    names = list(targets) if targets else sorted(reg.table("target"))
    classes = [reg.target(n) for n in names]  # unknown names fail before the capture
    _check_precision(precision, [])
    t0 = time.perf_counter()
    spec, program = capture_for_check(model, input_shape, model_options, reg)
    seconds = {"capture": round(time.perf_counter() - t0, 3)}
    out: dict[str, Coverage] = {}
    asked: list[Target] = []
    for cls in classes:
        tgt = target_for_check(cls, precision)
        if isinstance(tgt, str):
            status, _, why = tgt.partition(": ")
            out[cls.name] = not_known(cls.name, why, status)
        elif (unasked := no_coverage(tgt)) is not None:  # nothing to ask: no child process for it
            out[cls.name] = unasked
        else:
            asked.append(tgt)
    cached, keys = _cached(asked, program, precision) if use_cache and asked else ({}, {})  # nothing asked: no hashing
    answers = _answers([t for t in asked if t.name not in cached], program, precision, jobs, on_target)
    seconds.update({name: s for name, (_, s) in answers.items()})
    out.update({name: c for name, (c, _) in answers.items()} | cached)
    for name, key in keys.items():
        if name in answers:
            coverage_cache.store(key, answers[name][0])
    ordered = {cls.name: out[cls.name] for cls in classes}
    return Preflight(spec.name, tuple(spec.input.shape), precision, tuple(program_ops(program)), ordered, seconds,
                     tuple(n for n in ordered if n in cached))


def check_named_precision(names: Sequence[str], precision: str | None, registry: Registry | None = None) -> None:
    """BadInput when every target in ``names`` lacks ``precision``: ``edgest check`` would print a table of
    "skipped" columns that answers nothing, and exit 0 (:func:`check` itself records them as skipped)."""
    from edgest.plugins import get_registry

    reg = registry or get_registry()
    _check_precision(precision, [reg.target(n) for n in names])


def _check_precision(precision: str | None, named: Sequence[type[Target]]) -> None:
    """UnknownName for a precision edgest lacks; BadInput when every ``named`` target lacks it (every column
    would be "skipped": nothing asked, and exit 0)."""
    from edgest.errors import BadInput, UnknownName
    from edgest.validate import PRECISIONS

    if precision is None:
        return
    if precision not in PRECISIONS:
        raise UnknownName("precision", precision, PRECISIONS)
    if named and all(precision not in c.precisions for c in named):
        lacks = "; ".join(f"{c.name} has {', '.join(c.precisions)}" for c in named)
        raise BadInput(f"no target named has precision {precision} ({lacks}); name a target that has it, or "
                       "leave out --precision (each target's default)")


def _cached(targets: list[Target], program: torch.export.ExportedProgram,
            precision: str | None) -> tuple[dict[str, Coverage], dict[str, str]]:
    """(answers kept for these targets, each target's cache key): :mod:`edgest.coverage_cache`. A program or
    target the cache cannot key (a tensor it cannot read) is asked as if nothing were kept."""
    try:
        fingerprint = coverage_cache.program_fingerprint(program)
        keys = {t.name: coverage_cache.cache_key(t, fingerprint, precision) for t in targets}
    except Exception:  # noqa: BLE001 - the cache only saves time: never a reason for check to fail
        return {}, {}
    hits = {name: coverage_cache.load(key) for name, key in keys.items()}
    return {name: c for name, c in hits.items() if c is not None}, keys


def cached_ask(target: Target, program: torch.export.ExportedProgram, precision: str | None) -> Coverage:
    """:func:`ask`, reusing and keeping answers in :mod:`edgest.coverage_cache` (``compile --coverage``)."""
    hits, keys = _cached([target], program, precision)
    if target.name in hits:
        return hits[target.name]
    answer = ask(target, program, precision)
    if target.name in keys:
        coverage_cache.store(keys[target.name], answer)
    return answer


def _timed(target: Target, program: torch.export.ExportedProgram, precision: str | None,
           private: bool = False) -> tuple[Coverage, float]:
    t0 = time.perf_counter()
    answer = ask(target, program, precision, private)
    return answer, round(time.perf_counter() - t0, 3)


def _answers(targets: list[Target], program: torch.export.ExportedProgram, precision: str | None, jobs: int,
             on_target: Callable[[str], None] | None) -> dict[str, tuple[Coverage, float]]:
    """Each target's answer and seconds: in this process, or in ``jobs`` forked worker processes
    (:mod:`edgest.coverage_workers`: forked once the program is captured, each asking one target after another;
    one that crashes or hangs cannot take ``edgest check`` with it)."""
    import multiprocessing

    from edgest.coverage_workers import ask_in_workers

    if jobs <= 1 or len(targets) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        out = {}
        for t in targets:
            if on_target:
                on_target(t.name)
            out[t.name] = _timed(t, program, precision)
        return out
    return ask_in_workers(targets, program, precision, jobs, _timed, on_target)
