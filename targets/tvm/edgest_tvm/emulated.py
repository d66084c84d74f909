"""Run an aarch64 ``model.so`` on an x86_64 host: TVM's aarch64 runtime under ``qemu-aarch64``.

The artifact a phone or a Jetson would load is itself checked: Debian's arm64 python3.11 with
the aarch64 wheels of apache-tvm and apache-tvm-ffi (``make aarch64-sysroot`` builds that
sysroot) runs :mod:`edgest_tvm.qemu_worker` under user-mode emulation. The worker starts once
and serves every input set over a pipe, so emulated start-up (about 10 s) is paid once.
Latency under emulation means nothing, so the runner says so (``timing_unavailable``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgest import TargetUnavailable

if TYPE_CHECKING:
    import numpy as np

DEFAULT_SYSROOT = "~/.cache/edgest/aarch64-sysroot"
SETUP_HINT = "run `make aarch64-sysroot` (scripts/aarch64_sysroot.sh)"
QEMU = "qemu-aarch64"
START_TIMEOUT_S = 300.0
RUN_TIMEOUT_S = 600.0


def sysroot() -> Path:
    """The aarch64 sysroot: ``$EDGEST_AARCH64_SYSROOT`` or ``~/.cache/edgest/aarch64-sysroot``."""
    return Path(os.path.expanduser(os.environ.get("EDGEST_AARCH64_SYSROOT") or DEFAULT_SYSROOT))


def emulation_unavailable_reason() -> str | None:
    """Why aarch64 libraries cannot be run here under qemu, or None when they can."""
    root = sysroot()
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found (Debian: apt-get install qemu-user); {SETUP_HINT}"
    if not (root / "usr/bin/python3.11").exists() or not (root / "site/tvm").is_dir():
        return f"no aarch64 sysroot with python3.11 and TVM at {root}; {SETUP_HINT}"
    return None


class QemuRunner:
    """An aarch64 ``model.so`` in TVM's runtime-only Relax VM, in one long-lived emulated Python."""

    timing_unavailable = "emulated under qemu: latency meaningless"
    label = "TVM aarch64 runtime (Relax VM) under qemu-aarch64"

    def __init__(self, path: Path, threads: int) -> None:
        reason = emulation_unavailable_reason()
        if reason:
            raise TargetUnavailable(f"target 'tvm': cannot run the aarch64 library here: {reason}")
        root = sysroot()
        self.threads = threads
        self._work = Path(tempfile.mkdtemp(prefix="edgest-qemu-"))
        env = {**os.environ, "TVM_USE_RUNTIME_LIB": "1", "PYTHONPATH": str(root / "site"),
               "PYTHONNOUSERSITE": "1", "QEMU_LD_PREFIX": str(root)}
        env.pop("PYTHONHOME", None)
        worker = Path(__file__).with_name("qemu_worker.py")
        cmd = [QEMU, "-L", str(root), str(root / "usr/bin/python3.11"), str(worker), str(Path(path).absolute()),
               str(threads)]
        self._stderr = open(self._work / "stderr.txt", "w+")  # noqa: SIM115 - lives as long as the process
        self._proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                      text=True, bufsize=1)
        ready = self._answer("edgest-ready", START_TIMEOUT_S)
        self.arch = ready.split(" ", 1)[1] if " " in ready else ""
        self._count = 0

    def _answer(self, expect: str, timeout_s: float) -> str:
        """The worker's next protocol line; RuntimeError with its last stderr line if it died."""
        import selectors

        assert self._proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self._proc.stdout, selectors.EVENT_READ)
        try:
            while True:
                if not sel.select(timeout_s):
                    raise RuntimeError(f"qemu-aarch64 worker gave no answer within {timeout_s:g} s")
                line = self._proc.stdout.readline()
                if not line:
                    self._stderr.seek(0)
                    tail = self._stderr.read().strip().splitlines()[-1:] or [f"exit code {self._proc.wait()}"]
                    raise RuntimeError(f"qemu-aarch64 worker stopped: {tail[0][:300]}")
                if line.startswith("edgest-error "):
                    raise RuntimeError(f"under qemu-aarch64: {line[len('edgest-error '):].strip()}")
                if line.startswith(expect):
                    return line.strip()
        finally:
            sel.close()

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import numpy as np

        assert self._proc.stdin is not None
        folder = self._work / f"call{self._count}"
        self._count += 1
        folder.mkdir()
        for i, x in enumerate(inputs):
            np.save(folder / f"in{i}.npy", np.ascontiguousarray(x))
        self._proc.stdin.write(f"{folder}\n")
        self._proc.stdin.flush()
        n = int(self._answer("edgest-ok", RUN_TIMEOUT_S).split()[1])
        outs = [np.load(folder / f"out{i}.npy") for i in range(n)]
        shutil.rmtree(folder, ignore_errors=True)
        return outs

    def close(self) -> None:
        """Stop the emulated worker and remove its files."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()
        shutil.rmtree(self._work, ignore_errors=True)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown
            self.close()
