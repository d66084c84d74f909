"""This host's timing lock: cells compiled side by side never time their artifacts at the same time.

Cells compiled in parallel (a process pool, or several Ray tasks on one node) would otherwise time
their artifacts beside each other, on the same cores, caches and memory bandwidth. Each cell holds the
lock *exclusive* around its timed runs (in the check child, :func:`timing_turn`), so timings take turns,
on this host, across benches (the lock is two files in the temporary folder). Two policies, chosen by
``EDGEST_TIMING_LOCK``:

* ``turns`` (the default): only timings exclude each other; other cells keep compiling beside a timing.
  What that costs in accuracy of the figures is measured in docs/executors.md.
* ``alone``: a cell also holds the lock *shared* while it builds, captures, transforms, lowers and
  quantises, so no edgest compile runs on the host while a cell times (compiles still overlap each other).
  Waiting timings go first (a turnstile lock), so a stream of compiles cannot starve one.

Other programs on the host are never held back: the report records the host, and a shared machine is
still a shared machine.

POSIX ``flock``; where it is missing (Windows) cells run unlocked, as the local executor always could.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no flock, no lock
    fcntl = None  # type: ignore[assignment]

#: the stage that times (and runs) the artifact: exclusive; under ``alone`` every other stage of a cell is shared
TIMED_STAGE = "checks"
POLICIES = ("turns", "alone")

StageListener = Callable[[str, str, float], None]


def policy() -> str:
    """``EDGEST_TIMING_LOCK``: ``turns`` (default) or ``alone``; BadInput naming both for anything else."""
    value = os.environ.get("EDGEST_TIMING_LOCK", "") or "turns"
    if value not in POLICIES:
        from edgest.errors import BadInput

        raise BadInput(f"EDGEST_TIMING_LOCK={value!r} is not a timing policy; give turns or alone (docs/executors.md)")
    return value


def lock_dir() -> Path:
    """Where the lock files live: ``EDGEST_LOCK_DIR``, else the temporary folder (one per host)."""
    return Path(os.environ.get("EDGEST_LOCK_DIR") or tempfile.gettempdir())


class HostLock:
    """A readers-writer lock across processes on this host, with waiting writers first."""

    def __init__(self, folder: Path | None = None) -> None:
        folder = folder or lock_dir()
        self._main: IO[bytes] = open(folder / "edgest-timing.lock", "a+b")  # noqa: SIM115 - held for the lock's life
        self._turn: IO[bytes] = open(folder / "edgest-timing.turn", "a+b")  # noqa: SIM115
        self.mode = ""

    def shared(self) -> None:
        """Hold the lock shared (compiling), after any timing that waits for it."""
        if self.mode == "shared" or fcntl is None:
            return
        self.release()
        fcntl.flock(self._turn, fcntl.LOCK_EX)  # a waiting writer holds the turnstile: readers queue behind it
        fcntl.flock(self._turn, fcntl.LOCK_UN)
        fcntl.flock(self._main, fcntl.LOCK_SH)
        self.mode = "shared"

    def exclusive(self) -> None:
        """Hold the lock alone (timing): waits until every compile and timing on this host let go."""
        if self.mode == "exclusive" or fcntl is None:
            return
        self.release()
        fcntl.flock(self._turn, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._main, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self._turn, fcntl.LOCK_UN)
        self.mode = "exclusive"

    def release(self) -> None:
        """Let go (a no-op when not held)."""
        if self.mode and fcntl is not None:
            fcntl.flock(self._main, fcntl.LOCK_UN)
        self.mode = ""

    def close(self) -> None:
        self.release()
        self._main.close()
        self._turn.close()


@contextmanager
def cell_listener(then: StageListener | None = None) -> Iterator[StageListener]:
    """A stage listener for one cell that takes the host lock as the module docstring says (and calls ``then``);
    the lock is let go when the block ends, whatever happened in the cell."""
    lock, alone = HostLock(), policy() == "alone"

    def listener(name: str, event: str, seconds: float) -> None:
        if event == "start":
            if name == TIMED_STAGE:  # the check child takes the lock alone around its timed runs (timing_turn)
                lock.release()
            elif alone:
                lock.shared()
        elif name == TIMED_STAGE:
            lock.release()
        if then is not None:
            then(name, event, seconds)

    try:
        yield listener
    finally:
        lock.close()


@contextmanager
def timing_turn() -> Iterator[None]:
    """Hold this host's lock alone for the block: the timed runs of a check. Every edgest timing takes it, so
    timings never overlap on one host, whether cells run in a pool, in Ray tasks or in two shells; only the
    timed runs wait, not the check child's start-up or its accuracy runs."""
    lock = HostLock()
    try:
        lock.exclusive()
        yield
    finally:
        lock.close()
