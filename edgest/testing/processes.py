"""Process checks the process-tree tests share: whether a pid is alive (Linux ``/proc``)."""

from __future__ import annotations


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as dead: it only waits to be reaped); reads ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
