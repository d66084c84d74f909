"""LiteRT interpreter runner (XNNPACK on the CPU), shared by the host checks and device bundles.

Needs only NumPy and ai-edge-litert (no edgest, no torch): ``edgest bundle`` copies this file
into a bundle as the device runner, and :meth:`edgest_litert.target.LiteRTTarget.load` uses a
subclass of the same class that raises edgest's errors.

Inputs and outputs are fed and read in the model's subgraph order, which is the order of the
torch program's flattened inputs and outputs. A quantised model may keep an int8 tensor at its
boundary (litert-torch's static int8 leaves the logits int8): such inputs are quantised and
such outputs dequantised with the tensor's own scale and zero point, so callers always see
float32, as from the float model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def _scales(detail: dict[str, Any]) -> tuple[Any, Any, int] | None:
    """(scales, zero points, axis) of a quantised tensor, or None for a float one."""
    import numpy as np

    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", ()), dtype=np.float32)
    if scales.size == 0 or not np.any(scales):
        return None
    zeros = np.asarray(params.get("zero_points", np.zeros_like(scales)), dtype=np.float32)
    return scales, zeros, int(params.get("quantized_dimension", 0))


def _broadcast(values: Any, axis: int, ndim: int) -> Any:
    if values.size == 1 or ndim == 0:
        return values.reshape(()) if values.size == 1 else values
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)


def dequantize(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """``value`` as float32: integer tensors with a scale are dequantised, others cast."""
    import numpy as np

    q = _scales(detail)
    if q is None or not np.issubdtype(value.dtype, np.integer):
        return value.astype(np.float32) if value.dtype == np.float16 else value
    scales, zeros, axis = q
    return ((value.astype(np.float32) - _broadcast(zeros, axis, value.ndim)) * _broadcast(scales, axis, value.ndim)).astype(np.float32)


def quantize(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """``value`` in the dtype the model takes, quantised with the tensor's scale when it is integer."""
    import numpy as np

    dtype = np.dtype(detail["dtype"])
    q = _scales(detail)
    if q is None or not np.issubdtype(dtype, np.integer) or np.issubdtype(value.dtype, np.integer):
        return np.ascontiguousarray(value, dtype=dtype)
    scales, zeros, axis = q
    info = np.iinfo(dtype)
    scaled = np.round(value / _broadcast(scales, axis, value.ndim)) + _broadcast(zeros, axis, value.ndim)
    return np.ascontiguousarray(np.clip(scaled, info.min, info.max).astype(dtype))


class LiteRTRunner:
    """A ``.tflite`` file in the LiteRT interpreter: XNNPACK delegate (default) or builtin kernels only."""

    #: raised when the path holds no model / inputs do not fit it (the host subclass uses edgest's errors)
    unsupported: type[Exception] = RuntimeError
    bad_input: type[Exception] = ValueError

    def __init__(self, path: str | Path, threads: int, xnnpack: bool = True) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.path = Path(path)
        if not self.path.is_file():
            raise self.unsupported(f"no LiteRT model at {self.path} (a .tflite file)")
        resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads,
                                           experimental_op_resolver_type=resolver)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise self.unsupported(f"LiteRT could not load {self.path.name}: {_first_line(exc)}") from exc
        self.threads = threads
        self.xnnpack = xnnpack
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One inference: inputs in the model's input order, every output (float32) in its output order."""
        import numpy as np

        if len(inputs) != len(self._inputs):
            raise self.bad_input(f"{self.path.name} takes {len(self._inputs)} input(s), got {len(inputs)}")
        for k, (x, detail) in enumerate(zip(inputs, self._inputs)):
            x = np.asarray(x)
            if tuple(x.shape) != tuple(detail["shape"]):
                raise self.bad_input(f"{self.path.name} input {k} has shape {tuple(int(d) for d in detail['shape'])}, "
                                     f"got {tuple(x.shape)}")
            self.interpreter.set_tensor(detail["index"], quantize(x, detail))
        try:
            self.interpreter.invoke()
        except RuntimeError as exc:
            raise self.unsupported(f"LiteRT failed to run {self.path.name}: {_first_line(exc)}") from exc
        return [dequantize(self.interpreter.get_tensor(d["index"]), d) for d in self._outputs]


def _first_line(exc: BaseException) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:200]


def load(path: str, threads: int) -> LiteRTRunner:
    """The device-runner entry point: ``path`` in the LiteRT interpreter with XNNPACK and ``threads`` threads."""
    return LiteRTRunner(path, threads)
