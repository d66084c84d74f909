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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.coverage import Coverage, Preflight, not_known, program_ops
from edgest.errors import EdgestError
from edgest.target import Target

#: seconds all child processes together get to answer before the rest are marked failed
TIMEOUT_S = 600.0

if TYPE_CHECKING:
    import torch

    from edgest.plugins import Registry


def capture_for_check(model: str | torch.nn.Module, input_shape: Sequence[int] | str | None = None,
                      model_options: dict[str, Any] | None = None,
                      registry: Registry | None = None) -> tuple[Any, torch.export.ExportedProgram]:
    """The model's resolved spec and its captured program, as a compile would capture them (fp32, no passes)."""
    from edgest.plan import plan
    from edgest.stages import build, transform

    nowhere = Path(tempfile.gettempdir()) / "edgest-check-never-written"  # the plan needs a run folder; check writes none
    the_plan = plan(model, "eager", input_shape=input_shape, out_dir=nowhere, samples=1, latency=None,
                    task_samples=0, model_options=model_options, registry=registry)
    built = build.build(the_plan)
    program, _ = transform.capture_program(the_plan, built)
    return the_plan.spec, program


def target_for_check(target_cls: type[Target], precision: str | None) -> Target | str:
    """The target instance at ``precision`` (as :func:`edgest.plan.plan` makes it), or why it cannot answer."""
    from edgest.plan import FLOAT_PRECISIONS, _target

    reason = target_cls.unavailable_reason()
    if reason:
        return f"unavailable: {reason}"
    if precision is not None and precision not in target_cls.precisions:
        return f"skipped: no precision {precision} (it supports {', '.join(target_cls.precisions)})"
    try:
        return _target(target_cls, precision if precision in FLOAT_PRECISIONS else target_cls.default_precision, {})
    except EdgestError as exc:
        return f"failed: {exc}"


def ask(target: Target, program: torch.export.ExportedProgram, precision: str | None) -> Coverage:
    """``target.coverage`` on a copy of ``program``; None becomes "not known", an exception "failed"."""
    import logging

    from edgest.capture import first_line

    with warnings.catch_warnings():  # torch warns about its own LeafSpec when copying a program
        warnings.simplefilter("ignore")
        mine = copy.deepcopy(program)
    pytree = logging.getLogger("torch.utils._pytree")  # toolchains' imports register enums it warns about
    level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        answer = target.coverage(mine)
    except Exception as exc:  # noqa: BLE001 - one target failing to answer must not hide the others
        return not_known(target.name, f"coverage failed: {type(exc).__name__}: {first_line(exc)[:200]}", "failed")
    finally:
        pytree.setLevel(level)
    if answer is None:
        return not_known(target.name, f"target '{target.name}' does not report op coverage")
    if precision == "int8":
        answer = Coverage(answer.target, answer.ops, (answer.note + "; " if answer.note else "")
                          + "int8: verdicts for the float graph (ops the quantizer leaves float are not marked)",
                          answer.status)
    return answer


def check(model: str | torch.nn.Module, targets: Sequence[str] | None = None, *, precision: str | None = None,
          input_shape: Sequence[int] | str | None = None, model_options: dict[str, Any] | None = None,
          registry: Registry | None = None, on_target: Callable[[str], None] | None = None, jobs: int = 1) -> Preflight:
    """Capture ``model`` once and ask each of ``targets`` (None: every registered one) for its op coverage.

    ``precision`` None asks each target at its default precision; a precision a target lacks
    makes its column "skipped". ``jobs`` above 1 asks the targets in that many child processes at
    once (each imports torch again; worth it for several toolchains). Raises an
    :class:`~edgest.errors.EdgestError` for a bad model, shape, option or target name; a target
    that cannot answer is recorded, not raised.
    """
    from edgest.plugins import get_registry
    from edgest.validate import PRECISIONS

    reg = registry or get_registry()
    names = list(targets) if targets else sorted(reg.table("target"))
    classes = [reg.target(n) for n in names]  # unknown names fail before the capture
    if precision is not None and precision not in PRECISIONS:
        from edgest.errors import UnknownName

        raise UnknownName("precision", precision, PRECISIONS)
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
        elif type(tgt).coverage is Target.coverage:  # the contract's default: nothing to ask
            out[cls.name] = not_known(cls.name, f"target '{cls.name}' does not report op coverage")
        else:
            asked.append(tgt)
    answers = _answers(asked, program, precision, jobs, on_target)
    seconds.update({name: s for name, (_, s) in answers.items()})
    out.update({name: c for name, (c, _) in answers.items()})
    ordered = {cls.name: out[cls.name] for cls in classes}
    return Preflight(spec.name, tuple(spec.input.shape), precision, tuple(program_ops(program)), ordered, seconds)


def _timed(target: Target, program: torch.export.ExportedProgram, precision: str | None) -> tuple[Coverage, float]:
    t0 = time.perf_counter()
    answer = ask(target, program, precision)
    return answer, round(time.perf_counter() - t0, 3)


def _answers(targets: list[Target], program: torch.export.ExportedProgram, precision: str | None, jobs: int,
             on_target: Callable[[str], None] | None) -> dict[str, tuple[Coverage, float]]:
    """Each target's answer and seconds: in this process, or spread over ``jobs`` fresh child processes.

    Children import each toolchain in parallel (most of the time goes to imports) and keep a
    toolchain that crashes from taking ``edgest check`` with it.
    """
    if jobs <= 1 or len(targets) <= 1:
        out = {}
        for t in targets:
            if on_target:
                on_target(t.name)
            out[t.name] = _timed(t, program, precision)
        return out
    import io
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    from edgest.capture import first_line
    from edgest.checks.isolated import class_path

    blob = io.BytesIO()
    torch.export.save(program, blob)
    out = {}
    deadline = time.monotonic() + TIMEOUT_S
    pool = ProcessPoolExecutor(min(jobs, len(targets)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_child_dies_with_parent)
    answered = False
    try:
        futures = {t.name: pool.submit(_ask_in_child, class_path(type(t)), t.options, blob.getvalue(), precision)
                   for t in targets}
        for name, future in futures.items():
            if on_target:
                on_target(name)
            try:
                out[name] = future.result(timeout=max(1.0, deadline - time.monotonic()))
            except Exception as exc:  # noqa: BLE001 - the child died (a toolchain crashed it) or never answered
                why = f"no answer within {TIMEOUT_S:.0f} s" if isinstance(exc, TimeoutError) else first_line(exc)[:160]
                out[name] = (not_known(name, f"coverage failed: the process asking it died or hung ({why})", "failed"), 0.0)
        answered = all(out[n][0].status != "failed" for n in futures)
    finally:
        if not answered:  # a hung or crashed child must not keep check waiting
            for proc in list(getattr(pool, "_processes", {}).values()):
                if proc.is_alive():
                    proc.kill()
        pool.shutdown(wait=answered, cancel_futures=True)  # all answered: let the children end cleanly (no leaks)
    return out


def _child_dies_with_parent() -> None:
    from edgest.checks.lifeline import die_with_parent

    die_with_parent()


def _ask_in_child(path: str, options: dict[str, Any], blob: bytes, precision: str | None) -> tuple[Coverage, float]:
    """In a child process: load the program and the target class again, and ask."""
    import io

    import torch

    from edgest.checks.isolated import load_class

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.load(io.BytesIO(blob))
    return _timed(load_class(path)(**options), program, precision)
