"""SIGINT, SIGTERM and SIGHUP end edgest the same way: one line, exit 128 + the signal, nothing half-written.

The handler raises :class:`Interrupted`, a ``KeyboardInterrupt`` that carries the signal, so any
of the three unwinds the stack exactly as Ctrl-C does: context managers remove the staging folder
(:func:`edgest.outdir.staged_output`), temporary folders, and the check worker's process group
(:mod:`edgest.checks.isolated`) on the way out, and ``except Exception`` blocks let it pass.

* A second signal while that clean-up runs is ignored, so the clean-up completes; a third ends
  the process at once with the signal's default action (no clean-up: the user insisted).
* A signal that was ignored when edgest started stays ignored (``nohup`` ignores SIGHUP, a
  shell's background job SIGINT): that is what the user asked for.
* Only the process that installed the handlers reacts this way; a forked child gets the
  default action, so a child never raises into code that was not written for it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: the signals handled, in the order their names are listed
HANDLED: tuple[int, ...] = tuple(
    int(getattr(signal, name)) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

#: the exit codes of an interrupted command (128 + each handled signal)
EXIT_CODES: frozenset[int] = frozenset(128 + s for s in HANDLED)

_state: dict = {"pid": 0, "count": 0, "wrote": "", "active": False}


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when edgest receives SIGINT, SIGTERM or SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; ``signal N`` for a number the platform does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def signal_of(exc: BaseException) -> int:
    """The signal behind ``exc``: an :class:`Interrupted`, directly or as the cause of another
    exception (click wraps it in ``Abort``); SIGINT for a plain ``KeyboardInterrupt``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Interrupted):
            return seen.signum
        seen = seen.__cause__ or seen.__context__
    return int(signal.SIGINT)


def exit_code(exc: BaseException) -> int:
    """128 + the signal behind ``exc``: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP)."""
    return 128 + signal_of(exc)


def message(exc: BaseException) -> str:
    """The one line the CLI prints for an interrupt: nothing was written, or the last folder written in full."""
    done = _state.get("wrote")
    tail = f"'{done}' was written in full before it" if done else "nothing was written"
    return f"edgest: interrupted ({signal_name(signal_of(exc))}); {tail}"


def wrote(folder: object) -> None:
    """Record that ``folder`` is in place, complete: an interrupt after this says so instead of "nothing was written"
    (inside :func:`handled`, the CLI's command; in-process API calls record nothing)."""
    if _state.get("active"):
        _state["wrote"] = str(folder)


def _handler(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _state["pid"]:  # a forked child: the signal's default action, never a raise into its code
        _die(signum)
        return
    _state["count"] += 1
    if _state["count"] == 1:
        raise Interrupted(signum)
    if _state["count"] >= 3:
        _die(signum)


def _die(signum: int) -> None:
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def ignore_until_exit() -> None:
    """Ignore SIGINT, SIGTERM and SIGHUP from now on: for a process that has reported its interrupt and is only
    shutting down, where a second Ctrl-C would otherwise raise inside a library's atexit hook."""
    if threading.current_thread() is threading.main_thread():
        for signum in HANDLED:
            signal.signal(signum, signal.SIG_IGN)


@contextmanager
def handled() -> Iterator[None]:
    """:func:`install` for the block, then the handlers that were there before."""
    before = {signum: signal.getsignal(signum) for signum in HANDLED}
    install()
    try:
        yield
    finally:
        _state.update(active=False, wrote="")
        if threading.current_thread() is threading.main_thread():
            for signum, handler in before.items():
                if handler is not None:
                    signal.signal(signum, handler)


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP as described above; call from the main thread, before work starts.

    Installing again (e.g. a second in-process CLI call) starts the count afresh.
    """
    if threading.current_thread() is not threading.main_thread():  # signal.signal would raise; leave Python's default
        return
    _state.update(pid=os.getpid(), count=0, wrote="", active=True)
    for signum in HANDLED:
        current = signal.getsignal(signum)
        if current == signal.SIG_IGN or current is None:  # ignored by whoever started us, or set outside Python
            continue
        signal.signal(signum, _handler)
