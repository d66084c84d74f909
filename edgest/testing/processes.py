"""Process checks the process-tree tests share: whether a pid is alive (Linux ``/proc``); a folder's writer lock
held by another process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as dead: it only waits to be reaped); reads ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@contextmanager
def lock_held_elsewhere(folder: Path) -> Iterator[None]:
    """``folder``'s writer lock (:mod:`edgest.folder_lock`) held by another process while the block runs, as a
    running bench holds it (the lock is re-entrant in its own process, so only another one can stand for it)."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom edgest.folder_lock import folder_lock\n"
            "with folder_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        if proc.stdout is None or proc.stdout.readline().strip() != "held":
            raise RuntimeError(f"the process meant to hold the lock of '{folder}' did not take it")
        yield
    finally:
        proc.kill()
        proc.wait()
