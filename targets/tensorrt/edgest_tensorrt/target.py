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
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest.target import Lowered, Target
from edgest_tensorrt import device

if TYPE_CHECKING:
    import torch

    from edgest.coverage import Coverage

_PRECISIONS = ("fp32", "fp16")


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


class TrtRunner(device.TrtRunner):
    """The device runner on this host, raising edgest's errors."""

    unavailable, unsupported, bad_input = TargetUnavailable, Unsupported, BadInput


class TensorRTTarget(Target):
    """TensorRT engine from edgest's ONNX export, run by the TensorRT runtime on an NVIDIA GPU."""

    name = "tensorrt"
    artifact_format = "plan"
    description = "TensorRT engine (.plan) from ONNX, TensorRT runtime on an NVIDIA GPU"
    requires = ("tensorrt",)
    toolchain = ("tensorrt", "onnx", "onnxscript", "onnxsim")
    install_hint = "pip install tensorrt (needs an NVIDIA GPU and driver)"
    device_runner = "edgest_tensorrt.device"
    #: torch: the runner's I/O buffers are torch CUDA tensors (Jetson images ship torch)
    runtime_requirements = (("numpy", "tensorrt=={tensorrt}", "torch"),)
    precisions: ClassVar[tuple[str, ...]] = _PRECISIONS
    #: coverage predicts from the ONNX parser's documented table: no TensorRT, no GPU needed
    coverage_needs_runtime: ClassVar[bool] = False

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
            reason = device.no_cuda_reason()
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
        # io.json keeps the network's I/O order; a device bundle copies the files listed here
        return Lowered(path, {**details, **built, "files": [path.name, "io.json"]})

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        """TensorRT 10's documented ONNX-parser table on the program's ONNX export (:mod:`edgest_tensorrt.coverage`)."""
        from edgest_tensorrt.coverage import coverage

        return coverage(program)

    def load(self, path: Path, threads: int) -> TrtRunner:
        import importlib.util

        if importlib.util.find_spec("tensorrt") is None:
            raise TargetUnavailable(f"target 'tensorrt' unavailable: tensorrt not installed ({self.install_hint})")
        return TrtRunner(path, threads)
