"""A check process started while the artifact is still being made, so that its start-up overlaps the lowering.

The final check of a compile runs in a fresh process (:func:`edgest.checks.isolated.run_in_child`): its
cold-load and latency figures need one. Before that process can load the artifact it pays for Python,
NumPy, edgest and the target's runtime (the ExecuTorch target imports torch: about 1.5 s on 2 cores),
while the compile's own process sits idle waiting for it. A :class:`ReadyWorker` is that same process,
started when the compile starts capturing: it imports what it would import anyway, the target's
``runtime_modules`` included, and then waits, on stdin, for the folder of its one request. Lowering is
mostly one thread of Python, so on a machine with a second core the wait costs nothing.

Nothing the check measures changes: the worker imports the runtime before the cold-load clock starts
either way (:func:`edgest.checks.worker.main`), and it runs the same ``main``. The worker is one-shot,
leads its own process group, dies with this process (:mod:`edgest.checks.lifeline`), and is killed
with its group when the block ends, used or not. One that is gone, or was started for another thread
count, is not used: the check starts a fresh process as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from edgest.checks import lifeline
from edgest.checks.isolated import class_path, end_group, worker_env

if TYPE_CHECKING:
    from edgest.target import Target


class ReadyWorker:
    """One ``python -m edgest.checks.worker --ready`` process, waiting for a request (see the module docstring)."""

    def __init__(self, target: Target, threads: int, folder: Path) -> None:
        self.threads = threads
        self.stderr_path = folder / "stderr.txt"
        read_fd, self._lifeline_fd = lifeline.open_pipe()
        cmd = [sys.executable, "-m", "edgest.checks.worker", "--ready", class_path(type(target)),
               json.dumps(target.options), str(read_fd), str(os.getpid())]
        try:
            with open(self.stderr_path, "w") as err:
                self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                    cmd, env=worker_env(threads), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                    start_new_session=True, pass_fds=(read_fd,))
        finally:
            os.close(read_fd)
        self.pid = self._proc.pid

    def take(self, threads: int) -> subprocess.Popen[bytes] | None:
        """The waiting process, handed over once; None when it is used, gone, or runs another thread count."""
        proc, self._proc = self._proc, None
        if proc is not None and (threads != self.threads or proc.poll() is not None):
            end_group(proc)
            return None
        return proc

    def close(self) -> None:
        """Kill the worker's group (if it was never taken) and let go of its lifeline."""
        if self._proc is not None:
            end_group(self._proc)
            self._proc = None
        if self._lifeline_fd >= 0:
            os.close(self._lifeline_fd)
            self._lifeline_fd = -1


@contextmanager
def ready_worker(target: Target, threads: int) -> Iterator[ReadyWorker | None]:
    """A :class:`ReadyWorker` for ``target`` at ``threads``, ended on the way out; None for a target the worker
    cannot import again by name (a class defined inside a function): its check starts its own process."""
    from edgest.outdir import temp_folder

    try:
        class_path(type(target))
    except ValueError:
        yield None
        return
    with temp_folder("edgest-ready-") as folder:
        try:
            worker: ReadyWorker | None = ReadyWorker(target, threads, folder)
        except (TypeError, ValueError, OSError):  # options JSON cannot hold, no process: the check starts its own
            worker = None
        try:
            yield worker
        finally:
            if worker is not None:
                worker.close()
