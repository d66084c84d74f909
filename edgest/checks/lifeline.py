"""A child process that dies with its parent, and takes everything it started along.

The check worker (:mod:`edgest.checks.worker`) runs in its own process group. The parent kills
that group when the check ends, times out or is interrupted; this module covers the case the
parent cannot: its own ``kill -9``. Two mechanisms, because neither is enough alone:

* On Linux the worker asks the kernel for ``SIGKILL`` when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``): immediate, even while the worker is stuck in native code.
* A watchdog, forked from the worker before it imports anything heavy, blocks on a pipe whose
  only write end the parent holds. When the parent dies (or closes it) the read returns, and the
  watchdog kills the whole group: the worker and any process a runtime started in it (only when
  the worker leads its own group; otherwise just the worker). This also works where ``prctl``
  does not exist (macOS).

Where ``fork`` is missing, a thread in the worker watches the pipe and ends the worker instead.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

#: linux/prctl.h
PR_SET_PDEATHSIG = 1
#: exit status of a worker whose parent was already gone when it started
ORPHANED_EXIT = 3


def open_pipe() -> tuple[int, int]:
    """In the parent: ``(read_fd, write_fd)``; pass ``read_fd`` to the child, keep ``write_fd`` open while it runs.

    Both ends are non-inheritable: no other child of the parent holds the write end, so its EOF
    means the parent is gone or done.
    """
    return os.pipe()


def die_with_parent() -> bool:
    """Ask the kernel to ``SIGKILL`` this process when its parent dies; False where it cannot (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def hold(read_fd: int, parent_pid: int) -> None:
    """In the child, first thing: die with ``parent_pid``, and have the group killed when it dies.

    ``read_fd`` is the child's end of :func:`open_pipe`. Exits at once if the parent is already gone.
    """
    die_with_parent()
    if os.getppid() != parent_pid:  # it died before the prctl took effect
        os._exit(ORPHANED_EXIT)
    if hasattr(os, "fork") and hasattr(os, "killpg"):
        child = os.getpid()
        own_group = os.getpgrp() == child  # never kill a group this process merely joined
        if os.fork() == 0:  # the watchdog: no Python-level clean-up, no return
            try:
                _wait_for_eof(read_fd)
                if own_group:
                    os.killpg(child, signal.SIGKILL)
                else:
                    os.kill(child, signal.SIGKILL)
            finally:
                os._exit(0)
        os.close(read_fd)
        return
    threading.Thread(target=_exit_on_eof, args=(read_fd,), daemon=True, name="edgest-lifeline").start()


def _wait_for_eof(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except InterruptedError:
            continue
        except OSError:
            return


def _exit_on_eof(fd: int) -> None:
    _wait_for_eof(fd)
    os._exit(ORPHANED_EXIT)
