"""Runs inside the emulated aarch64 Python: TVM's runtime-only Relax VM on an aarch64 ``model.so``.

Started once per check by :class:`edgest_tvm.emulated.QemuRunner` as
``qemu-aarch64 -L SYSROOT SYSROOT/usr/bin/python3.11 qemu_worker.py model.so THREADS`` with
``TVM_USE_RUNTIME_LIB=1``. Needs only numpy and tvm (no edgest, no torch). Protocol on
stdin/stdout, one line each: the parent sends a folder holding ``in0.npy, in1.npy, ...``; the
worker writes ``out0.npy, ...`` there and answers ``edgest-ok N`` (or ``edgest-error TEXT``).
It answers ``edgest-ready ARCH`` once the library is loaded. It ends when the process that
started it dies, ``kill -9`` included, not only once it next reads stdin (:func:`_die_with_parent`).
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from pathlib import Path


def _flatten(out: object) -> list[object]:
    if hasattr(out, "numpy"):
        return [out.numpy()]
    return [y for item in out for y in _flatten(item)]  # type: ignore[attr-defined]


def _die_with_parent() -> None:
    """Exit when the parent dies: the kernel's parent-death signal (Linux; qemu-user passes the prctl
    through), and a thread that notices the parent change where that is missing or the race lost."""
    parent = os.getppid()
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001, S110 - the thread below still watches
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="edgest-parent-watch").start()


def main(library: str, threads: str) -> int:
    _die_with_parent()
    os.environ["TVM_NUM_THREADS"] = threads
    import numpy as np
    import tvm
    from tvm import runtime
    from tvm.runtime.vm import VirtualMachine

    vm = VirtualMachine(runtime.load_module(library), tvm.cpu())
    main_fn = vm["main"]
    print(f"edgest-ready {platform.machine()}", flush=True)
    for line in sys.stdin:
        folder = Path(line.strip())
        if not line.strip():
            continue
        try:
            inputs = [np.load(folder / f"in{i}.npy") for i in range(len(list(folder.glob("in*.npy"))))]
            outs = _flatten(main_fn(*(runtime.tensor(np.ascontiguousarray(x), tvm.cpu()) for x in inputs)))
            for i, y in enumerate(outs):
                np.save(folder / f"out{i}.npy", y)
            print(f"edgest-ok {len(outs)}", flush=True)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it there
            text = (str(exc).strip().splitlines() or [""])[0][:300]
            print(f"edgest-error {type(exc).__name__}: {text}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
