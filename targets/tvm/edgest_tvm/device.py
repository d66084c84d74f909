"""Relax VM runner for TVM ``model.so`` libraries, shared by the host checks and device bundles.

Needs only NumPy and TVM's runtime (no edgest, no torch): ``edgest bundle`` copies this file
into a bundle as the device runner, where :func:`load` asks TVM for its runtime library only
(``TVM_USE_RUNTIME_LIB=1``, as a device would ship it); :meth:`edgest_tvm.target.TvmTarget.load`
uses :class:`TvmRunner` on the host.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class TvmRunner:
    """The Relax VM on the host CPU; threads come from ``TVM_NUM_THREADS`` (set before the pool starts)."""

    def __init__(self, path: str | Path, threads: int) -> None:
        os.environ["TVM_NUM_THREADS"] = str(threads)
        import tvm
        from tvm.runtime.vm import VirtualMachine  # what tvm.relax.VirtualMachine is, without the compiler

        # the worker pool is created on the first parallel kernel; make sure it uses `threads`
        config = tvm.get_global_func("runtime.config_threadpool", allow_missing=True)
        if config is not None:
            config(0, threads)
        self.vm = VirtualMachine(tvm.runtime.load_module(str(path)), tvm.cpu())
        self._main = self.vm["main"]
        self._device = tvm.cpu()
        self.threads = threads

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One call of ``main``; nested tuple outputs flattened in order."""
        import numpy as np
        import tvm

        args = [tvm.runtime.tensor(np.ascontiguousarray(x), self._device) for x in inputs]
        out = self._main(*args)
        flat: list[np.ndarray] = []
        stack = [out]
        while stack:
            item = stack.pop(0)
            if hasattr(item, "numpy"):
                flat.append(item.numpy())
            else:
                stack[:0] = list(item)
        return flat


def load(path: str, threads: int) -> TvmRunner:
    """The device-runner entry point: ``path`` on the Relax VM of TVM's runtime-only library."""
    os.environ.setdefault("TVM_USE_RUNTIME_LIB", "1")  # load libtvm_runtime only, as a device would
    return TvmRunner(path, threads)
