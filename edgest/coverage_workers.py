"""The child processes ``edgest check`` asks its targets in: ``jobs`` forked workers, each asking one target after another.

A worker is forked once the program is captured, so it starts with torch, edgest and the program
in memory (the fork is the copy). It then asks the targets the parent hands it, one at a time, the
next one as soon as it has answered. What two targets asked by the same worker both import (torch's
ONNX exporter, Inductor's pieces, coremltools) is then imported once in that worker, and ``--targets all``
starts ``jobs`` processes instead of one per target. Which worker asks which target depends on who
is free first.

A target that crashes or hangs still cannot take ``edgest check`` with it: a worker that dies marks
only the target it was asking "failed", and a new worker is forked for the targets still waiting;
past :data:`TIMEOUT_S` the workers are killed and the targets without an answer are "failed".
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from edgest.coverage import Coverage, not_known

if TYPE_CHECKING:
    import torch

    from edgest.target import Target

#: seconds all workers together get to answer before the rest are marked failed
TIMEOUT_S = 600.0

Asker = Callable[["Target", "torch.export.ExportedProgram", "str | None", bool], "tuple[Coverage, float]"]


@dataclass
class _Worker:
    process: Any
    conn: Any
    target: int  # the index of the target it is asking


def ask_in_workers(targets: list[Target], program: torch.export.ExportedProgram, precision: str | None, jobs: int,
                   asker: Asker, on_target: Callable[[str], None] | None = None) -> dict[str, tuple[Coverage, float]]:
    """Each target's ``asker(target, program, precision, private)`` result, asked in at most ``jobs`` forked workers.

    ``private`` is True for the last target a worker asks (nobody else will read its copy of the
    program, so the target may change it in place); earlier ones get a copy.
    """
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    preload()
    waiting, busy, out = list(range(len(targets))), {}, {}

    def give(worker: _Worker | None) -> None:
        index = waiting.pop(0)
        if worker is None:
            worker = _fork(ctx, targets, program, precision, asker)
        worker.target = index
        if on_target:
            on_target(targets[index].name)
        worker.conn.send((index, not waiting))
        busy[worker.conn] = worker

    deadline = time.monotonic() + TIMEOUT_S
    try:
        while waiting and len(busy) < jobs:
            give(None)
        while busy:
            ready = wait(list(busy), timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            for conn in ready:
                worker = busy.pop(conn)
                answer = _received(targets[worker.target].name, worker)
                out[targets[worker.target].name] = answer
                alive = answer[1] is not None and worker.process.is_alive()
                if waiting:
                    give(worker if alive else None)
                if conn not in busy:
                    _stop(worker)
    finally:
        for worker in busy.values():  # past the deadline, or interrupted: do not keep waiting
            worker.process.kill()
            _stop(worker)
    late = not_known("", f"coverage failed: no answer within {TIMEOUT_S:.0f} s", "failed")
    return {t.name: _seconds(out.get(t.name)) or (replace(late, target=t.name), 0.0) for t in targets}


def _seconds(answer: tuple[Coverage, float | None] | None) -> tuple[Coverage, float] | None:
    return None if answer is None else (answer[0], answer[1] or 0.0)


def _fork(ctx: Any, targets: list[Target], program: Any, precision: str | None, asker: Asker) -> _Worker:
    parent_end, child_end = ctx.Pipe(duplex=True)
    # not a daemon: a toolchain may start processes of its own; die_with_parent and the kill in ask_in_workers end it
    process = ctx.Process(target=_work, args=(targets, program, precision, asker, child_end))
    process.start()
    child_end.close()  # the worker holds the only other end: EOF means it ended
    return _Worker(process, parent_end, -1)


def _stop(worker: _Worker) -> None:
    """Tell an idle worker to end (a dead one cannot hear it) and reap it."""
    try:
        worker.conn.send(None)
    except (OSError, ValueError):
        pass
    worker.process.join(5)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(5)
    worker.conn.close()


def _received(name: str, worker: _Worker) -> tuple[Coverage, float | None]:
    """The answer a worker sent, or "failed" (seconds None) when it died without one."""
    try:
        return worker.conn.recv()
    except (EOFError, OSError):
        worker.process.join(5)
        code = worker.process.exitcode
        why = f"exit code {code}" if code is not None else "no answer"
        return not_known(name, f"coverage failed: the process asking it died ({why})", "failed"), None


def _work(targets: list[Target], program: Any, precision: str | None, asker: Asker, conn: Any) -> None:
    """In a forked worker: ask each target the parent names, until it sends None."""
    import torch

    from edgest.checks.lifeline import die_with_parent

    die_with_parent()
    # one intra-op thread: the parent's OpenMP pool does not survive the fork (a parallel op would hang), and
    # the workers share the cores anyway
    torch.set_num_threads(1)
    while (job := conn.recv()) is not None:
        index, private = job
        conn.send(asker(targets[index], program, precision, private))
    conn.close()


def preload() -> None:
    """Import, once before forking, the part of torch most toolchains import (Inductor's lowerings, ~1 s of CPU):
    every worker then starts with it instead of each importing it again."""
    import contextlib

    with contextlib.suppress(Exception), warnings.catch_warnings():  # only a head start: a worker imports what it needs
        warnings.simplefilter("ignore")
        import torch._inductor.lowering  # noqa: F401
