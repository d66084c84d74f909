"""AOTInductor package runner, shared by the host checks and device bundles.

Needs only NumPy and torch (AOTInductor's loader is part of torch; a CUDA build for a GPU
package), no edgest: ``edgest bundle`` copies this file into a bundle as the device runner,
and :meth:`edgest_cuda.target.CudaTarget.load` uses :class:`AotiRunner` on the host. The
package's ``aot_inductor.metadata`` (written at lowering) says which device, precision,
memory format and CUDA-graph setting to run it with.

A package's shared library is loaded with the C++ runtime torch already loaded made global first
(:func:`share_cxx_runtime`), as it is in a C++ program that links libtorch.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def torch_dtype(precision: str) -> torch.dtype:
    """The torch dtype of a precision name (fp32, fp16, bf16)."""
    import torch

    return getattr(torch, _DTYPES[precision])


#: prefix of edgest's keys in the package's ``aot_inductor.metadata``
META_PREFIX = "edgest."


def memory_format(t: torch.Tensor) -> torch.memory_format | None:
    """The channels-last memory format for a rank-4/5 tensor, else None."""
    import torch

    return {4: torch.channels_last, 5: torch.channels_last_3d}.get(t.dim())


def to_channels_last(t: torch.Tensor) -> torch.Tensor:
    """``t`` in channels-last(-3d) memory format where its rank has one."""
    fmt = memory_format(t)
    return t.contiguous(memory_format=fmt) if fmt is not None else t


def capture_cuda_graph(
    call: Callable[[Sequence[torch.Tensor]], list[torch.Tensor]], static_inputs: Sequence[torch.Tensor], warmup: int = 2,
) -> tuple[torch.cuda.CUDAGraph, list[torch.Tensor]]:
    """Capture ``call(static_inputs)`` in a CUDA graph; (graph, static outputs).

    Replay with ``graph.replay()`` after copying new values into ``static_inputs``; the outputs
    are overwritten by each replay. An AOTInductor package must be loaded with
    ``run_single_threaded=True`` to be captured (it then runs on the caller's current stream).
    """
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):  # outside the graph: lazy module loads, allocator warm-up, autotuning
            call(static_inputs)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = call(static_inputs)
    return graph, outputs


def no_tf32() -> None:
    """Turn TF32 off for cuBLAS and cuDNN in this process: torch lets cuDNN convolutions run in TF32
    by default (10-bit mantissa), so an fp32 package would not compute in fp32. Inductor reads the flag
    when it picks matmul kernels and the package's convolutions read it when they run, so both the
    compile and the runner set it."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def read_package_metadata(path: Path) -> dict[str, str]:
    """The ``aot_inductor.metadata`` stored in a package, read from the archive without loading it."""
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.endswith("wrapper_metadata.json"):
                return json.loads(zf.read(name))
    return {}


def share_cxx_runtime() -> bool:
    """Make the ``libstdc++`` this process already loaded (through torch) global, so that a library loaded
    later binds its C++ runtime symbols to it; True when done, False where there is nothing to do.

    A Python process loads ``libstdc++`` as a private dependency of torch's libraries. A package's shared
    library that does not link ``libstdc++`` itself (as packages compiled on a torch 2.11.0+cu130 image
    with GCC 13 do not) then binds the C++ runtime code it carries, such as ``std::regex``'s locale
    use in ``parse_device_str``, partly to its own copies, and it crashed (SIGSEGV) while being loaded:
    every CUDA and CPU package on that image, through torch's package loader and through
    ``AOTIModelContainerRunner`` alike. In a C++ program linking libtorch, ``libstdc++`` is global
    from the start; this gives a Python process the same. Linux only; loads nothing new.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL("libstdc++.so.6", mode=os.RTLD_GLOBAL | os.RTLD_NOLOAD)
    except OSError:  # not loaded: nothing will bind to it
        return False
    return True


def has_external_weights(path: Path) -> bool:
    """Whether the package at ``path`` stores weights outside its compiled library (``data/weights/``)."""
    with zipfile.ZipFile(path) as zf:
        return any("/data/weights/" in f"/{name}" for name in zf.namelist())


def load_package(path: str | Path, device: torch.device, single_threaded: bool) -> Callable[..., object]:
    """The package at ``path`` loaded by torch's package loader for ``device``, the C++ runtime shared first
    (:func:`share_cxx_runtime`). ``single_threaded`` gives a runner that a CUDA graph can capture.

    This is ``torch._inductor.aoti_load_package`` without its device comparison, which picks this CPU's
    vector ISA by compiling probe programs only to log a warning on a mismatch: without it the cold load of
    ``edgest compile --model squeezetime_tiny --target cuda`` on a 2-core CPU went from 1.4-1.6 s to 37-45 ms,
    and on the H200 image ``bench/cuda_aoti_load.py``'s device-info step took 51-58 s, its metadata step
    3-5 s. A package whose
    weights are stored as ``data/weights/`` (``aot_inductor.package_constants_in_so=False`` with pickled
    weights; edgest keeps Inductor's default, inside the library) needs ``load_pt2``, which loads them, so it
    goes to torch's loader (torch 2.13's crashed calling such a package here; it is still the one meant to).
    """
    import torch

    share_cxx_runtime()
    index = device.index if device.type == "cuda" and device.index is not None else -1
    if has_external_weights(Path(path)):
        return torch._inductor.aoti_load_package(str(path), run_single_threaded=single_threaded, device_index=index)
    try:
        from torch.export.pt2_archive._package import AOTICompiledModel
    except ImportError:  # where older torch builds define it
        from torch._inductor.package.package import AOTICompiledModel

    return AOTICompiledModel(torch._C._aoti.AOTIModelPackageLoader(str(path), "model", single_threaded, 1, index))


class AotiRunner:
    """A loaded AOTInductor package; numpy fp32 in, numpy fp32 out."""

    def __init__(self, path: str | Path, threads: int, device: str, precision: str, channels_last: bool,
                 cudagraphs: bool) -> None:
        import torch

        torch.set_num_threads(threads)
        self.threads = threads
        self.device = torch.device(device)
        self.dtype = torch_dtype(precision)
        self.channels_last = channels_last
        self.cuda = self.device.type == "cuda"
        if self.cuda and self.dtype == torch.float32:
            no_tf32()
        self.model = load_package(path, self.device, single_threaded=self.cuda and cudagraphs)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.cudagraphs = "off"
        self._want_graph = self.cuda and cudagraphs
        self._static_in: list[torch.Tensor] = []
        self._static_out: list[torch.Tensor] = []

    def _to_device(self, x: np.ndarray) -> torch.Tensor:
        import torch

        t = torch.from_numpy(x)
        t = t.to(device=self.device, dtype=self.dtype if t.is_floating_point() else t.dtype, non_blocking=False)
        return to_channels_last(t) if self.channels_last else t

    def _call(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = self.model(*xs)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def _capture(self, xs: list[torch.Tensor]) -> None:
        """Record one call of the package in a CUDA graph with static buffers; fall back on failure."""
        import torch

        self._want_graph = False
        try:
            self._static_in = [x.clone() for x in xs]
            self.graph, self._static_out = capture_cuda_graph(self._call, self._static_in)
            self.cudagraphs = "on"
        except Exception as exc:  # noqa: BLE001 - plain calls still work
            self.graph, self._static_out = None, []
            first = (str(exc).strip().splitlines() or [""])[0][:160]
            self.cudagraphs = f"fallback: {type(exc).__name__}: {first}"
            torch.cuda.synchronize()

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            xs = [self._to_device(x) for x in inputs]
            if self._want_graph:
                self._capture(xs)
            if self.graph is not None:
                for buf, x in zip(self._static_in, xs):
                    buf.copy_(x)
                self.graph.replay()
                outs = self._static_out
            else:
                outs = self._call(xs)
            result = [(o.float() if o.is_floating_point() else o).cpu() for o in outs]
            if self.cuda:
                torch.cuda.synchronize()
        return [o.numpy() for o in result]


def load(path: str, threads: int) -> AotiRunner:
    """The device-runner entry point: the package at ``path`` run as its metadata says."""
    import torch

    meta = read_package_metadata(Path(path))
    device = meta.get(f"{META_PREFIX}device", "cpu")
    if device != "cpu" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise RuntimeError(f"{Path(path).name} was compiled for {device} but torch {torch.__version__} ({build}) "
                           "sees no CUDA device; run it on the GPU machine it was built for")
    return AotiRunner(path, threads, device=device, precision=meta.get(f"{META_PREFIX}precision", "fp32"),
                      channels_last=meta.get(f"{META_PREFIX}channels_last") == "True",
                      cudagraphs=meta.get(f"{META_PREFIX}cudagraphs") == "True")
