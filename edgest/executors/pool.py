"""The pool executor: jobs in ``jobs`` worker processes on this machine (``--executor pool --jobs N``).

Workers are *spawned*, not forked: each imports edgest and its plugins afresh, so no lock, thread or
toolchain state of the parent is copied half-way into them. A job that raises comes back as a
:class:`~edgest.executors.Done` with the error; a worker that dies (a runtime that segfaults outside
the check child) fails the jobs it left unfinished, named as such. Ctrl-C (or leaving the loop)
cancels the queued jobs, interrupts the running ones (they unwind their staging folders) and waits
for the workers to end.

:meth:`PoolExecutor.warm` starts the workers ahead of the jobs: they import torch, edgest and the plugins
while the caller does its own first work (bench's pre-flight), instead of after it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, ClassVar

from edgest.errors import BadInput
from edgest.executors import Done, Job, StartListener, here


def _init_worker() -> None:
    """A worker dies with the bench (even on ``kill -9`` of it) and, while idle, ends quietly on a signal."""
    from edgest.checks.lifeline import die_with_parent
    from edgest.interrupts import HANDLED

    die_with_parent()
    for signum in HANDLED:
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _quiet_exit)


def _quiet_exit(signum: int, frame: object) -> None:
    """An idle worker's answer to SIGINT/SIGTERM/SIGHUP: the bench says what happened; no traceback here."""
    os._exit(128 + signum)


def _warm_up() -> int:
    """What every cell's worker needs first: torch (and one op), edgest's bench code and the installed plugins."""
    import torch

    import edgest.bench_jobs  # noqa: F401 - imported for its side of the warm-up: the cell code, loaded once
    from edgest.plugins import get_registry

    get_registry()
    torch.ones(2).add_(1)
    return os.getpid()


def _call(fn: Callable[[Any, Any], Any], shared: Any, arg: Any) -> tuple[Any, dict[str, Any]]:
    from edgest import interrupts

    with interrupts.handled():  # during a cell, signals unwind it like Ctrl-C: no half-written run folder
        return fn(shared, arg), here("pool")


class PoolExecutor:
    """Runs jobs in a pool of ``jobs`` spawned processes on this machine."""

    name: ClassVar[str] = "pool"
    remote: ClassVar[bool] = False

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise BadInput(f"--jobs {jobs} must be at least 1")
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self, size: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)

    @contextmanager
    def warm(self) -> Iterator[None]:
        """Start the workers now and warm them up in the background; :meth:`run` inside the block uses them.
        The workers end with the block."""
        self._pool = self._new_pool(self.jobs)
        for _ in range(self.jobs):
            self._pool.submit(_warm_up)
        try:
            yield
        finally:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)

    def run(self, jobs: Sequence[Job], shared: Any = None, on_start: StartListener | None = None) -> Iterator[Done]:
        """Yield each job's :class:`Done` as it completes (``on_start`` is not called: a pool does not say)."""
        if not jobs:
            return
        own = self._pool is None
        pool = self._new_pool(min(self.jobs, len(jobs))) if own else self._pool
        futures: dict[Future[Any], Job] = {pool.submit(_call, job.fn, shared, job.arg): job for job in jobs}
        finished = False
        try:
            for fut in as_completed(futures):
                yield _done(futures[fut], fut)
            finished = True
        finally:
            if not finished:
                _stop(pool)
            if own or not finished:
                pool.shutdown(wait=True, cancel_futures=True)


def _done(job: Job, fut: Future[Any]) -> Done:
    try:
        value, where = fut.result()
    except BrokenProcessPool:
        return Done(job.index, error="not finished: a pool worker process died (crashed or was killed); run the cell "
                                     "again, or with --executor local to see the crash", where=here("pool"))
    except Exception as exc:  # noqa: BLE001 - a job's own error is its outcome, not the bench's end
        return Done(job.index, error=f"{type(exc).__name__}: {exc}", where=here("pool"))
    return Done(job.index, value, where=where)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Interrupt the workers (they unwind as on Ctrl-C) so shutdown does not wait for whole cells."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.pid and proc.is_alive():
            try:
                os.kill(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
