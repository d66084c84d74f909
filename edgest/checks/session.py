"""One check process for many artifacts: the runs a compile makes in a row without timing them.

:func:`edgest.checks.isolated.run_in_child` starts a fresh Python process per artifact, and each
start pays for Python, NumPy, edgest and the target's runtime before the artifact is even loaded
(about 0.3 s for ONNX Runtime on 2 cores; seconds for a runtime that imports torch; 13 s for coremltools). That is right for the final check, whose cold-load and latency figures need a fresh
process, and wasteful where a compile only wants outputs, artifact after artifact: the quantised
artifact's delta against the float one (two runs) and per-layer sensitivity (one run per layer).

A :class:`CheckSession` keeps one worker (``python -m edgest.checks.worker --serve``) for all of them.
Isolation is kept per run: a runtime that crashes or hangs costs that run (its outcome names the
signal or the time limit, as ``run_in_child``'s does), the worker's process group is killed, and the
next run starts a fresh worker. The worker leads its own process group, dies with this process
(:mod:`edgest.checks.lifeline`), and is ended when the session closes, however it is left.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from edgest.checks import lifeline
from edgest.checks.isolated import (
    ChildOutcome,
    check_room,
    collect,
    end_group,
    exit_failure,
    worker_env,
    write_request,
)

if TYPE_CHECKING:
    import numpy as np

    from edgest.target import Target

#: seconds between looks at whether a worker that has not answered yet is still alive
_POLL_S = 0.2


class CheckSession:
    """A check worker kept across runs (see the module docstring); use :func:`check_session`."""

    def __init__(self, work: Path, timeout_s: float = 600.0) -> None:
        self.work, self.timeout_s = work, timeout_s
        self.started = 0  # worker processes started (one unless a run crashed or hung)
        self._count = 0
        self._threads = 0  # the running worker's thread count: its OMP_NUM_THREADS is set when it starts
        self._proc: subprocess.Popen[bytes] | None = None
        self._reply_fd = self._lifeline_fd = -1
        self._stderr: IO[str] | None = None

    def run(self, target: Target, artifact: Path, inputs: Sequence[Sequence[np.ndarray]], threads: int = 1) -> ChildOutcome:
        """``artifact``'s outputs on ``inputs``, run by ``target``'s runner in the session's worker (not timed)."""
        check_room(inputs)
        name = str(self._count)
        self._count += 1
        work = self.work / name
        work.mkdir()
        write_request(work, target, artifact, inputs, threads, latency=None)
        if self._proc is None or self._proc.poll() is not None or threads != self._threads:
            self._start(threads)
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(f"{name}\n".encode())
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # the worker died between runs: the reply wait below sees its exit
        code, failure = self._reply(name)
        if code is not None:
            failure = exit_failure(code, work, self.work / f"stderr.{self.started}.txt")
        return collect(work, len(inputs), failure)

    def _start(self, threads: int) -> None:
        self._stop()
        self.started += 1
        self._threads = threads
        read_fd, self._lifeline_fd = lifeline.open_pipe()
        reply_read, reply_write = os.pipe()
        cmd = [sys.executable, "-m", "edgest.checks.worker", "--serve", str(self.work), str(reply_write), str(read_fd),
               str(os.getpid())]
        self._stderr = open(self.work / f"stderr.{self.started}.txt", "w")  # noqa: SIM115 - closed in _stop
        try:
            self._proc = subprocess.Popen(cmd, env=worker_env(threads), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._stderr, start_new_session=True, pass_fds=(read_fd, reply_write))
        finally:
            os.close(read_fd)
            os.close(reply_write)
        self._reply_fd = reply_read

    def _reply(self, name: str) -> tuple[int | None, str]:
        """The worker's exit code for run ``name`` (0/1 as its ``main`` returns; negative: killed by a signal), or
        None and the failure when it did not answer within the time limit (the worker is then stopped)."""
        assert self._proc is not None
        line, deadline = b"", time.monotonic() + self.timeout_s
        while not line.endswith(b"\n"):
            # the lifeline's watchdog (a fork of the worker) holds the reply pipe too, so a dead worker need not
            # close it: its exit status is polled between short waits
            ready, _, _ = select.select([self._reply_fd], [], [], min(_POLL_S, max(deadline - time.monotonic(), 0)))
            chunk = os.read(self._reply_fd, 256) if ready else b""
            line += chunk
            if chunk:
                continue
            if ready:  # the pipe's end: every holder closed it, so the worker is exiting
                try:
                    self._proc.wait(timeout=max(deadline - time.monotonic(), 0))
                except subprocess.TimeoutExpired:
                    pass
            code = self._proc.poll()
            if code is not None:  # the worker is gone: its exit status says how
                self._stop()
                return code, ""
            if time.monotonic() >= deadline:
                self._stop()
                return None, f"check process did not finish within {self.timeout_s:g} s and was killed"
        answered, _, code_text = line.decode().strip().partition(" ")
        if answered != name:
            self._stop()
            return None, f"check process answered run {answered!r} when run {name!r} was asked"
        return int(code_text), ""

    def _stop(self) -> None:
        """End the worker's process group and close what this side holds of it."""
        if self._proc is not None:
            end_group(self._proc)
            self._proc = None
        for fd in (self._reply_fd, self._lifeline_fd):
            if fd >= 0:
                os.close(fd)
        self._reply_fd = self._lifeline_fd = -1
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        """Stop the worker (if one runs)."""
        self._stop()


@contextmanager
def check_session(timeout_s: float = 600.0) -> Iterator[CheckSession]:
    """A :class:`CheckSession` in a temporary folder; its worker is stopped and the folder removed on the way out."""
    from edgest.outdir import temp_folder

    with ExitStack() as stack:
        work = stack.enter_context(temp_folder("edgest-session-"))
        session = CheckSession(work, timeout_s)
        stack.callback(session.close)
        yield session
