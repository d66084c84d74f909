"""Where bench (and later optimize) cells run: here, in a pool of processes, or as tasks on a Ray cluster.

One small interface. A caller hands an :class:`Executor` a list of :class:`Job` (a picklable
top-level function, its argument, and what a host needs to offer to run it) plus one ``shared``
argument every job receives; :meth:`Executor.run` yields a :class:`Done` per job as each completes,
saying where it ran. Leaving the loop early (Ctrl-C, an exception, ``close()``) cancels every job not
finished. Nothing a job computes depends on the executor: the function computes it the same way
wherever it runs, so results, cache keys and reports are the same whichever executor ran them.

* ``local``: one job after another in this process (edgest's behaviour before executors).
* ``pool``: ``jobs`` processes on this machine (:mod:`edgest.executors.pool`).
* ``ray``: one Ray task per job, placed by resources (:mod:`edgest.executors.cluster`); Ray is
  optional and imported only when this executor is used.

Latency figures stay honest on a shared host: timings take this host's timing lock
(:mod:`edgest.executors.timing`), so no two overlap (and, with ``EDGEST_TIMING_LOCK=alone``, no compile runs
while one times).
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgest.errors import BadInput

#: the executors, as ``--executor`` names them
EXECUTORS = ("local", "pool", "ray")


@dataclass(frozen=True)
class Job:
    """One unit of work: ``fn(shared, arg)``; ``needs`` are the resources a host must offer
    (``CPU``, ``edgest-target:<name>``, ``device:<label>``), used only where placement exists (Ray)."""

    index: int
    label: str
    fn: Callable[[Any, Any], Any]
    arg: Any
    needs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    """A finished job: its value, or ``error`` (the job crashed, its node died past the retries, or no host
    offers its resources); ``where`` it ran (executor, host, pid or node id) and how many ``attempts`` it took."""

    index: int
    value: Any = None
    error: str = ""
    where: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    failures: tuple[str, ...] = ()


#: told when a job starts (the job, where): executors that know it call it
StartListener = Callable[[Job, dict[str, Any]], None]


class Executor(Protocol):
    """Runs jobs and yields each as it completes; see the module docstring."""

    name: str
    #: whether a job may run on another machine: its files must then travel with its value
    remote: bool

    def run(self, jobs: Sequence[Job], shared: Any = None, on_start: StartListener | None = None) -> Iterator[Done]:
        """Yield a :class:`Done` per job, in the order they complete."""
        ...


def here(executor: str) -> dict[str, Any]:
    """Where this process runs: the executor's name, the host name and the process id."""
    return {"executor": executor, "host": socket.gethostname(), "pid": os.getpid()}


def get_executor(name: str = "local", *, jobs: int | None = None, address: str | None = None,
                 retries: int = 2, store: Path | None = None) -> Executor:
    """The executor called ``name``: ``local``, ``pool`` (``jobs`` processes; default: the CPUs) or ``ray``
    (``address`` of a cluster, default ``auto``: the running one, else a local one; a node that dies
    mid-job has it run again up to ``retries`` times; files over the inline limit go to ``store``).

    BadInput for an unknown name or an option the executor does not take; TargetUnavailable when Ray is missing.
    """
    if name not in EXECUTORS:
        from edgest.validate import did_you_mean

        raise BadInput(f"unknown executor '{name}'; available: {', '.join(EXECUTORS)}{did_you_mean(name, EXECUTORS)}")
    if jobs is not None and name != "pool":
        raise BadInput(f"--jobs ({jobs}) sets the pool's processes; add --executor pool, or drop --jobs")
    if address is not None and name != "ray":
        raise BadInput(f"--address ({address}) names a Ray cluster; add --executor ray, or drop --address")
    if name == "local":
        from edgest.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "pool":
        from edgest.executors.pool import PoolExecutor

        return PoolExecutor(jobs or os.cpu_count() or 1)
    from edgest.executors.cluster import RayExecutor

    return RayExecutor(address or "auto", retries=retries, store=store or _store_from_env())


def _store_from_env() -> Path | None:
    """``EDGEST_SHARED_STORE`` as a folder this machine can write into, or None; BadInput for one it cannot."""
    value = os.environ.get("EDGEST_SHARED_STORE", "")
    if not value:
        return None
    store = Path(value)
    try:  # as transfer.pack writes into it, after the cells have compiled: better refused now; never created here
        tempfile.TemporaryFile(dir=store).close()  # (a missing mount point made on local disk would hide from the nodes)
    except OSError as exc:
        raise BadInput(f"EDGEST_SHARED_STORE={value!r} is not a folder edgest can write ({exc.strerror}); point it at "
                       "a folder every node mounts at the same path, or unset it (files then travel through Ray)") from None
    return store
