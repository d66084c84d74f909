"""Core AI runner (``AIModelAsset.executable()``), shared by the host checks and device bundles.

Needs only NumPy and ``coreai-core`` (no edgest, no torch): ``edgest bundle`` copies this file
into a bundle as the device runner. On macOS 27 the asset runs on the OS's Core AI runtime;
anywhere else (Linux x86-64 included) ``coreai-core`` lowers it to its portable form and runs it
on the runtime Apple bundles in the wheel, the same numerics on a host that is not Apple
hardware. :meth:`edgest_coreai.target.CoreAITarget.load` uses a subclass raising edgest's errors.

The runtime is asynchronous (``async with asset.executable() as model``); the runner keeps the
model loaded on a private event loop and runs each inference to completion on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: what ran, when it is not Core AI on Apple hardware (shown beside the accuracy figures)
HOST_LABEL = "Core AI runtime (host build, not Apple hardware)"
#: the first macOS whose own Core AI runtime runs these assets
MACOS_MAJOR = 27


def on_apple_runtime() -> bool:
    """True on macOS 27 or newer, where the OS's Core AI runtime (and its timings) are the real ones."""
    if sys.platform != "darwin":
        return False
    release = platform.mac_ver()[0] or "0"
    return int(release.split(".")[0]) >= MACOS_MAJOR


def timing_unavailable_here() -> str:
    """Why latency is not measured on this host ("" on macOS 27, where it is real)."""
    if on_apple_runtime():
        return ""
    host = f"{platform.system() or sys.platform} {platform.machine()}".strip()
    return (f"not run: Core AI latency is meaningful only on Apple hardware with macOS {MACOS_MAJOR} (this host is "
            f"{host}); accuracy was checked on the {HOST_LABEL}, whose speed says nothing about a Mac's or iPhone's")


def _numpy_dtype(name: str) -> Any:
    """The NumPy dtype of a Core AI array dtype name (``float16``, ``bfloat16``, ...)."""
    import numpy as np

    if name == "bfloat16":
        import ml_dtypes  # a dependency of coreai-core

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _widen(y: np.ndarray) -> np.ndarray:
    """fp16 and bf16 outputs as float32 (what edgest compares); anything else as it is."""
    import numpy as np

    return y.astype(np.float32) if str(y.dtype) in ("float16", "bfloat16") else y


class CoreAIRunner:
    """An ``.aimodel`` asset loaded by the Core AI runtime; function ``main`` run per call.

    Inputs are cast to the dtypes the function declares (fp16 / bf16 assets take fp16 / bf16
    inputs); outputs come back in the function's order, widened to float32 when narrower.
    Core AI schedules its own threads (there is no setting for them), so ``threads`` is 0.
    """

    threads: int = 0
    #: raised when the path holds no asset / the runtime cannot load it / inputs are wrong
    unavailable: type[Exception] = RuntimeError
    unsupported: type[Exception] = RuntimeError
    bad_input: type[Exception] = ValueError

    def __init__(self, path: str | Path, function: str = "main") -> None:
        from coreai.authoring import AIModelAsset

        self.path = Path(path)
        if not (self.path / "metadata.json").is_file():
            raise self.unsupported(f"no Core AI asset at {self.path} (an .aimodel folder with metadata.json)")
        self.label = "" if on_apple_runtime() else HOST_LABEL
        self.timing_unavailable = timing_unavailable_here()
        self._loop = asyncio.new_event_loop()
        self._stack = contextlib.AsyncExitStack()
        try:
            asset = AIModelAsset.load(self.path)
            model = self._loop.run_until_complete(self._stack.enter_async_context(asset.executable()))
            self._fn = model.load_function(function)
        except Exception as exc:
            self.close()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise self.unsupported(f"the Core AI runtime could not load {self.path.name}: {type(exc).__name__}: {first}") from exc
        desc = self._fn.desc
        self._inputs = [(n, _numpy_dtype(desc.input_descriptor(n).dtype)) for n in desc.input_names]
        self._outputs = list(desc.output_names)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One inference of ``main``; every output in the function's order."""
        import numpy as np
        from coreai.runtime import NDArray

        if len(inputs) != len(self._inputs):
            raise self.bad_input(f"{self.path.name} takes {len(self._inputs)} input(s), got {len(inputs)}")
        feed = {name: NDArray(np.ascontiguousarray(np.asarray(x).astype(dtype, copy=False)))
                for (name, dtype), x in zip(self._inputs, inputs)}
        out = self._loop.run_until_complete(self._fn(feed))
        return [_widen(out[name].numpy()) for name in self._outputs]

    def close(self) -> None:
        """Release the loaded model (and the folder the host build lowered it into)."""
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._stack.aclose())
            self._loop.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def load(path: str, threads: int) -> CoreAIRunner:
    """The device-runner entry point: the asset on Core AI (the OS runtime on macOS 27, the bundled one elsewhere)."""
    return CoreAIRunner(path)
