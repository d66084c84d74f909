"""TensorRT engine runner, shared by the host checks and device bundles.

Needs only NumPy, tensorrt and a CUDA build of torch (its CUDA tensors are the I/O buffers;
Jetson images ship torch), no edgest: ``edgest bundle`` copies this file into a bundle as the
device runner, and :meth:`edgest_tensorrt.target.TensorRTTarget.load` uses a subclass that
raises edgest's errors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch


def no_cuda_reason() -> str | None:
    """Why torch cannot reach a CUDA device here, or None when it can."""
    import torch

    if torch.cuda.is_available():
        return None
    return (f"torch {torch.__version__} sees no CUDA device; TensorRT builds and runs engines on an NVIDIA GPU "
            "(install a CUDA build of torch on a machine with an NVIDIA driver)")


def io_order(plan: Path) -> dict[str, list[str]] | None:
    """The network's input and output names in order, from ``io.json`` beside the engine (written at lowering)."""
    side = plan.with_name("io.json")
    return json.loads(side.read_text()) if side.exists() else None


class TrtRunner:
    """A deserialised engine with one execution context; I/O buffers are torch CUDA tensors."""

    #: raised when no GPU / the engine does not fit this GPU, for shapes or types edgest does not handle,
    #: for a wrong number of inputs (the host runner raises edgest's errors instead)
    unavailable: type[Exception] = RuntimeError
    unsupported: type[Exception] = RuntimeError
    bad_input: type[Exception] = ValueError

    def __init__(self, path: str | Path, threads: int) -> None:
        import tensorrt as trt
        import torch

        reason = no_cuda_reason()
        if reason:
            raise self.unavailable(f"target 'tensorrt' cannot run here: {reason}")
        torch.set_num_threads(threads)
        self.threads = threads
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise self.unavailable(f"TensorRT {trt.__version__} cannot deserialise {Path(path).name} on this GPU "
                                   "(engines are tied to the TensorRT version and GPU they were built with)")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        inputs, outputs = self._io_names(trt, Path(path))
        self._inputs = [self._buffer(trt, n, tuple(self.engine.get_tensor_shape(n)), dynamic_ok=False) for n in inputs]
        self._outputs = [self._buffer(trt, n, tuple(self.context.get_tensor_shape(n))) for n in outputs]

    def _io_names(self, trt: Any, path: Path) -> tuple[list[str], list[str]]:
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        order = io_order(path)
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if order:
            inputs = sorted(inputs, key=lambda n: order["inputs"].index(n) if n in order["inputs"] else len(inputs))
            outputs = sorted(outputs, key=lambda n: order["outputs"].index(n) if n in order["outputs"] else len(outputs))
        return inputs, outputs

    def _buffer(self, trt: Any, name: str, shape: tuple[int, ...], dynamic_ok: bool = True) -> torch.Tensor:
        import torch

        if not dynamic_ok and any(d < 0 for d in shape):
            raise self.unsupported(f"engine input '{name}' has a dynamic shape {shape}; edgest builds static-shape engines")
        buf = torch.empty(shape, dtype=self._torch_dtype(trt, self.engine.get_tensor_dtype(name)), device="cuda")
        self.context.set_tensor_address(name, buf.data_ptr())
        return buf

    def _torch_dtype(self, trt: Any, dtype: Any) -> Any:
        import torch

        table = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT32": torch.int32,
                 "INT64": torch.int64, "INT8": torch.int8, "UINT8": torch.uint8, "BOOL": torch.bool}
        for name, torch_dtype in table.items():
            if hasattr(trt.DataType, name) and dtype == getattr(trt.DataType, name):
                return torch_dtype
        raise self.unsupported(f"TensorRT I/O tensor type {dtype} has no torch equivalent in edgest's runner")

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One execution on the runner's CUDA stream; outputs copied back (floats as float32)."""
        import torch

        if len(inputs) != len(self._inputs):
            raise self.bad_input(f"engine takes {len(self._inputs)} inputs, got {len(inputs)}")
        with torch.cuda.stream(self.stream):
            for buf, x in zip(self._inputs, inputs):
                buf.copy_(torch.from_numpy(x))
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            outs = [o.float().cpu() if o.is_floating_point() else o.cpu() for o in self._outputs]
        self.stream.synchronize()
        return [o.numpy() for o in outs]


def load(path: str, threads: int) -> TrtRunner:
    """The device-runner entry point: the engine at ``path`` (``io.json`` beside it, if any) on the GPU."""
    return TrtRunner(path, threads)
