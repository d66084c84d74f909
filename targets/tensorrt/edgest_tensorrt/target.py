"""TensorRT target: edgest's ONNX export → TensorRT engine (``model.plan``) → TensorRT runtime.

Lowering exports ONNX with :func:`edgest_onnx.target.export_onnx`, runs the pre-flight check
(:func:`edgest_tensorrt.check.check_onnx_for_tensorrt`, recorded in the artifact's details),
then builds a serialised engine with the ``tensorrt`` Python API: a network from the ONNX
parser (explicit batch), a builder config with a workspace memory-pool limit and the FP16 flag
for precision fp16. The runner deserialises the engine and executes it with
``execute_async_v3`` on a CUDA stream, with torch CUDA tensors as the I/O buffers.

int8 (not offered yet): TensorRT 10 takes int8 through explicit quantisation, i.e. QuantizeLinear/
DequantizeLinear pairs in the ONNX graph (per-tensor activations, per-channel weights, zero point 0),
produced by a quantisation pass before export; implicit calibration is deprecated in TensorRT 10.

``tensorrt`` and CUDA torch are imported inside the methods: without them the target is listed
as unavailable with an install hint and edgest keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest.target import Lowered, Target

if TYPE_CHECKING:
    import numpy as np
    import torch

_PRECISIONS = ("fp32", "fp16")


def _trt_torch_dtype(trt: Any, dtype: Any) -> Any:
    import torch

    table = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT32": torch.int32,
             "INT64": torch.int64, "INT8": torch.int8, "UINT8": torch.uint8, "BOOL": torch.bool}
    for name, torch_dtype in table.items():
        if hasattr(trt.DataType, name) and dtype == getattr(trt.DataType, name):
            return torch_dtype
    raise Unsupported(f"TensorRT I/O tensor type {dtype} has no torch equivalent in edgest's runner")


def _no_cuda_reason() -> str | None:
    import torch

    if torch.cuda.is_available():
        return None
    return (f"torch {torch.__version__} sees no CUDA device; TensorRT builds and runs engines on an NVIDIA GPU "
            "(install a CUDA build of torch on a machine with an NVIDIA driver)")


def _parser_error(err: Any) -> str:
    """One line for an ONNX-parser error: the op and node (TensorRT 10 has them) and the description."""
    def get(name: str) -> Any:
        fn = getattr(err, name, None)
        try:
            return fn() if callable(fn) else None
        except Exception:  # noqa: BLE001 - older bindings lack some accessors
            return None

    desc = get("desc") or str(err)
    op, node = get("node_operator"), get("node_name")
    where = " ".join(x for x in (f"op {op}" if op else "", f"node '{node}'" if node else "") if x)
    return f"{where}: {str(desc).strip()}" if where else str(desc).strip()


def build_engine(onnx_path: Path, precision: str = "fp32", workspace_mb: int = 4096,
                 optimization_level: int | None = None) -> tuple[bytes, dict[str, Any]]:
    """Parse ``onnx_path`` with TensorRT's ONNX parser and build a serialised engine; (plan, details)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    major = int(trt.__version__.split(".")[0])
    if major < 10:  # explicit batch is the only mode (and the flag deprecated) from TensorRT 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise Unsupported(f"TensorRT {trt.__version__}'s ONNX parser refused the model: {'; '.join(errors)[:400]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if optimization_level is not None:
        config.builder_optimization_level = int(optimization_level)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise Unsupported(f"TensorRT {trt.__version__} could not build an engine for the model (see the builder log above)")
    details = {
        "tensorrt": trt.__version__,
        "precision": precision,
        "workspace_mb": int(workspace_mb),
        "layers": network.num_layers,
        "inputs": [network.get_input(i).name for i in range(network.num_inputs)],
        "outputs": [network.get_output(i).name for i in range(network.num_outputs)],
    }
    return bytes(plan), details


class TrtRunner:
    """A deserialised engine with one execution context; I/O buffers are torch CUDA tensors."""

    def __init__(self, path: Path, threads: int) -> None:
        import tensorrt as trt
        import torch

        reason = _no_cuda_reason()
        if reason:
            raise TargetUnavailable(f"target 'tensorrt' cannot run here: {reason}")
        torch.set_num_threads(threads)
        self.threads = threads
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise TargetUnavailable(f"TensorRT {trt.__version__} cannot deserialise {Path(path).name} on this GPU "
                                    "(engines are tied to the TensorRT version and GPU they were built with)")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        order = _io_order(Path(path))
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if order:
            inputs = sorted(inputs, key=lambda n: order["inputs"].index(n) if n in order["inputs"] else len(inputs))
            outputs = sorted(outputs, key=lambda n: order["outputs"].index(n) if n in order["outputs"] else len(outputs))
        self._inputs: list[torch.Tensor] = []
        self._outputs: list[torch.Tensor] = []
        for n in inputs:
            shape = tuple(self.engine.get_tensor_shape(n))
            if any(d < 0 for d in shape):
                raise Unsupported(f"engine input '{n}' has a dynamic shape {shape}; edgest builds static-shape engines")
            buf = torch.empty(shape, dtype=_trt_torch_dtype(trt, self.engine.get_tensor_dtype(n)), device="cuda")
            self.context.set_tensor_address(n, buf.data_ptr())
            self._inputs.append(buf)
        for n in outputs:
            shape = tuple(self.context.get_tensor_shape(n))
            buf = torch.empty(shape, dtype=_trt_torch_dtype(trt, self.engine.get_tensor_dtype(n)), device="cuda")
            self.context.set_tensor_address(n, buf.data_ptr())
            self._outputs.append(buf)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        if len(inputs) != len(self._inputs):
            raise BadInput(f"engine takes {len(self._inputs)} inputs, got {len(inputs)}")
        with torch.cuda.stream(self.stream):
            for buf, x in zip(self._inputs, inputs):
                buf.copy_(torch.from_numpy(x))
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            outs = [o.float().cpu() if o.is_floating_point() else o.cpu() for o in self._outputs]
        self.stream.synchronize()
        return [o.numpy() for o in outs]


def _io_order(plan: Path) -> dict[str, list[str]] | None:
    side = plan.with_name("io.json")
    return json.loads(side.read_text()) if side.exists() else None


class TensorRTTarget(Target):
    """TensorRT engine from edgest's ONNX export, run by the TensorRT runtime on an NVIDIA GPU."""

    name = "tensorrt"
    artifact_format = "plan"
    description = "TensorRT engine (.plan) from ONNX, TensorRT runtime on an NVIDIA GPU"
    requires = ("tensorrt",)
    toolchain = ("tensorrt", "onnx", "onnxscript", "onnxsim")
    install_hint = "pip install tensorrt (needs an NVIDIA GPU and driver)"
    precisions: ClassVar[tuple[str, ...]] = _PRECISIONS

    #: int8 is absent on purpose: it needs Q/DQ nodes in the ONNX graph, not offered yet
    option_table: ClassVar[dict[str, tuple[Any, Any]]] = {
        "precision": (_PRECISIONS, "fp32"), "workspace_mb": (int, 4096), "builder_optimization_level": (int, None),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # checks keys and types against option_table
        self.options = {"precision": self.option("precision"), "workspace_mb": self.option("workspace_mb"),
                        **({"builder_optimization_level": options["builder_optimization_level"]}
                           if "builder_optimization_level" in options else {})}

    @classmethod
    def unavailable_reason(cls) -> str | None:
        reason = super().unavailable_reason()
        if reason is None:
            reason = _no_cuda_reason()
        return reason

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        from edgest_tensorrt.check import export_and_check

        onnx_path, problems, details = export_and_check(program, example_inputs, out_dir)
        details = {f"onnx_{k}": v for k, v in details.items()}
        details["onnx_problems"] = problems  # a prediction: the parser below has the last word
        plan, built = build_engine(onnx_path, self.options["precision"], self.options["workspace_mb"],
                                   self.options.get("builder_optimization_level"))
        path = out_dir / "model.plan"
        path.write_bytes(plan)
        (out_dir / "io.json").write_text(json.dumps({"inputs": built["inputs"], "outputs": built["outputs"]}))
        return Lowered(path, {**details, **built})

    def load(self, path: Path, threads: int) -> TrtRunner:
        import importlib.util

        if importlib.util.find_spec("tensorrt") is None:
            raise TargetUnavailable(f"target 'tensorrt' unavailable: tensorrt not installed ({self.install_hint})")
        return TrtRunner(path, threads)
