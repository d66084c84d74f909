"""The pool executor: jobs in ``jobs`` worker processes on this machine (``--executor pool --jobs N``).

Workers are never forked from the bench itself (its threads, locks and toolchain state would be copied
half-way into them). Where the platform has it, a *fork server* (a fresh process that has only imported
torch, edgest, the plugins and the modules the caller names, and started no thread) forks them, so that
work is done once for all workers, while the caller does its own first work (bench's pre-flight)
(:mod:`edgest.executors.preload`); the server lives as long as this process, and later pools reuse it.
Elsewhere workers are *spawned* and each imports for itself. A job that raises comes back as a
:class:`~edgest.executors.Done` with the error; a worker that dies (a runtime that segfaults outside
the check child) fails the jobs it left unfinished, named as such. Ctrl-C (or leaving the loop)
cancels the queued jobs, interrupts the running ones (they unwind their staging folders) and waits
for the workers to end.

:meth:`PoolExecutor.warm` starts the workers ahead of the jobs, warm: torch, edgest, the plugins and the modules the
caller names (a bench's model and target code, its toolchains) imported, instead of in each worker's first job.

Workers share the host's cores: each sets torch's intra-op threads to ``cores // jobs`` (at least 1) for
the work it does itself (building, capturing, lowering, eager reference outputs), so ``jobs`` workers do not
run ``jobs × cores`` threads on ``cores`` cores. Timed checks are not affected: they run in their own child
process with the bench's ``--threads``, under the host timing lock (:mod:`edgest.executors.timing`).
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, ClassVar

from edgest.errors import BadInput
from edgest.executors import Done, Job, StartListener, here
from edgest.fsio import pid_alive


def _init_worker(threads: int = 0, modules: Sequence[str] = (), bench: int = 0) -> None:
    """A worker dies with the bench (even on ``kill -9`` of it) and, while idle, ends quietly on a signal;
    it uses ``threads`` intra-op threads (0: torch's default) and is warmed up with ``modules`` imported
    (those the fork server imported already cost nothing).
    ``bench``: the bench's process id, watched when the worker's parent is a fork server, not the bench."""
    from edgest.checks.lifeline import die_with_parent
    from edgest.interrupts import HANDLED

    die_with_parent()
    if bench and bench != os.getppid():
        _die_with(bench)
    for signum in HANDLED:
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _quiet_exit)
    if threads:
        import torch

        torch.set_num_threads(threads)
    if modules:
        _warm_up(modules)


def _die_with(pid: int) -> None:
    """Kill this process when process ``pid`` ends, however it ends: a thread waits on a pidfd (Linux), or
    polls where there is none. (A fork server outlives the bench while its workers live: they must go first.)"""
    def watch() -> None:
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # not Linux, or already gone
            while pid_alive(pid):
                time.sleep(1.0)
        else:
            select.select([fd], [], [])  # readable once the process has ended
        os.kill(os.getpid(), signal.SIGKILL)  # a check child running under this worker dies with it (its lifeline)

    threading.Thread(target=watch, daemon=True, name="edgest-bench-lifeline").start()


def _quiet_exit(signum: int, frame: object) -> None:
    """An idle worker's answer to SIGINT/SIGTERM/SIGHUP: the bench says what happened; no traceback here."""
    os._exit(128 + signum)


#: what every job of a bench needs first, besides the modules a caller names: torch and its graph capture
#: (``torch._dynamo`` takes seconds to import), edgest's cell code
BASE_MODULES = ("torch", "torch._dynamo", "edgest.bench_jobs")


def import_all(modules: Sequence[str]) -> None:
    """Import ``modules``; one that fails is left to the job that needs it, which says why. Starts no thread and
    runs no op, so the fork server (:mod:`edgest.executors.preload`) may fork afterwards."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - warming is best effort: the job reports a broken toolchain itself
            continue


def _warm_up(modules: Sequence[str]) -> None:
    """Import ``modules`` (:func:`import_all`) and the installed plugins, and run one torch op."""
    import_all(modules)
    from edgest.plugins import get_registry

    get_registry()
    import torch

    torch.ones(2).add_(1)


#: the fork server's preload list (:mod:`edgest.executors.preload`, which reads it at start-up)
PRELOAD_ENV = "EDGEST_POOL_PRELOAD"


def _warm_context(modules: Sequence[str]) -> multiprocessing.context.BaseContext:
    """A fork server that imports ``modules`` once (started now, importing while the caller goes on), where the
    platform has one; else spawn. The server is this process's: a later pool reuses it as it is."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["edgest.executors.preload"])
    before = os.environ.get(PRELOAD_ENV)
    os.environ[PRELOAD_ENV] = ",".join(modules)  # the server inherits it at start; this process, not beyond the call
    try:
        forkserver.ensure_running()
    finally:
        if before is None:
            os.environ.pop(PRELOAD_ENV, None)
        else:
            os.environ[PRELOAD_ENV] = before
    return ctx


def _ready() -> int:
    return os.getpid()


def share_of_cores(jobs: int) -> int:
    """The intra-op threads each of ``jobs`` workers uses: this host's cores shared out, at least 1."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _call(fn: Callable[[Any, Any], Any], shared: Any, arg: Any) -> tuple[Any, dict[str, Any]]:
    from edgest import interrupts

    with interrupts.handled():  # during a cell, signals unwind it like Ctrl-C: no half-written run folder
        return fn(shared, arg), here("pool")


class PoolExecutor:
    """Runs jobs in a pool of ``jobs`` worker processes on this machine (forked by a fork server, or spawned)."""

    name: ClassVar[str] = "pool"
    remote: ClassVar[bool] = False

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise BadInput(f"--jobs {jobs} must be at least 1")
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None
        self._starting: threading.Thread | None = None

    def _new_pool(self, size: int, modules: Sequence[str] | None = None,
                  toolchains: Sequence[str] = ()) -> ProcessPoolExecutor:
        """``size`` workers; warm (cores shared out, :data:`BASE_MODULES`, ``modules`` and ``toolchains``
        imported) unless ``modules`` is None."""
        if modules is None:
            return ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)
        modules = (*BASE_MODULES, *modules)
        return ProcessPoolExecutor(size, mp_context=_warm_context(modules), initializer=_init_worker,
                                   initargs=(share_of_cores(self.jobs), (*modules, *toolchains), os.getpid()))

    @contextmanager
    def warm(self, modules: Sequence[str] = (), toolchains: Sequence[str] = ()) -> Iterator[None]:
        """Start the workers now and warm them up in the background with what the jobs will import besides
        :data:`BASE_MODULES`: ``modules`` (Python code over torch, that starts no thread: imported once, in the
        fork server) and ``toolchains`` (imported in each worker, after the fork: native runtimes may start
        threads, which a fork must not copy). :meth:`run` inside the block uses them. The workers end with the block."""
        pool = self._pool = self._new_pool(self.jobs, modules, toolchains)
        # one call per worker (the pool starts a process per call waiting), from a thread: starting a process
        # waits for the fork server's imports, which the caller's own first work should not
        self._starting = threading.Thread(target=lambda: [pool.submit(_ready) for _ in range(self.jobs)],
                                          daemon=True, name="edgest-pool-start")
        self._starting.start()
        try:
            yield
        finally:
            self._starting.join()
            self._pool = self._starting = None
            pool.shutdown(wait=True, cancel_futures=True)

    def run(self, jobs: Sequence[Job], shared: Any = None, on_start: StartListener | None = None) -> Iterator[Done]:
        """Yield each job's :class:`Done` as it completes (``on_start`` is not called: a pool does not say)."""
        if not jobs:
            return
        own = self._pool is None
        if self._starting is not None:
            self._starting.join()  # the warm workers first, then the jobs
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
