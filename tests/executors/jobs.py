"""Top-level job functions for the executor tests (a spawned worker or a Ray node imports them by name)."""

from __future__ import annotations

import os
import time
from typing import Any


def square(shared: Any, x: int) -> dict[str, Any]:
    """x² plus ``shared``, and the process that computed it."""
    return {"value": x * x + (shared or 0), "pid": os.getpid()}


def fail(shared: Any, x: int) -> None:
    raise ValueError(f"job {x} fails on purpose")


def nap(shared: Any, seconds: float) -> int:
    """Sleep (long enough for the test to kill the node the job runs on), then say which process ran it."""
    time.sleep(seconds)
    return os.getpid()


def nap_then_touch(shared: Any, arg: tuple[float, str]) -> None:
    """Sleep, then create a file: a job that leaves a trace only when it runs to its end."""
    seconds, path = arg
    time.sleep(seconds)
    open(path, "w").close()
