"""Runners for the timing process: NumPy inputs in, every output as NumPy out, at a thread count.

Peers run on their runtime's plain API with the settings a user would give (threads, latency
mode); edgest's artifacts are loaded by their own target's runner, as :mod:`edgest.checks.retime` does.
Each loader returns ``(runner, facts)``: facts are what the runtime says it executes, where it says.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class TorchRunner:
    """A module (eager or ``torch.compile``-d) called under ``no_grad``; intra-op threads are the process's."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        from edgest.checks.outputs import forward_outputs

        with torch.no_grad():
            return forward_outputs(self.module, [torch.from_numpy(np.asarray(x)) for x in inputs], "the model")


def load_eager(module: Any, threads: int) -> tuple[TorchRunner, dict[str, Any]]:
    """Eager PyTorch (``torch.set_num_threads`` is set once for the whole timing process)."""
    import torch

    return TorchRunner(module), {"executes": "fp32", "torch_threads": torch.get_num_threads()}


def load_torch_compile(module: Any, threads: int, example: np.ndarray) -> tuple[TorchRunner, dict[str, Any]]:
    """``torch.compile`` (inductor) with ``freezing=True``, compiled now by one call on ``example``."""
    import time

    import torch
    import torch._inductor.config as inductor

    inductor.freezing = True
    runner = TorchRunner(torch.compile(module))
    t0 = time.perf_counter()
    runner.run([example])
    return runner, {"executes": "fp32", "compile_s": round(time.perf_counter() - t0, 1)}


def load_ort(path: str, threads: int) -> tuple[Any, dict[str, Any]]:
    """An ONNX Runtime CPU session, ``intra_op_num_threads=threads``, all graph optimisations."""
    import onnxruntime as ort

    class Ort:
        def __init__(self) -> None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            self.names = [i.name for i in self.session.get_inputs()]

        def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            return self.session.run(None, dict(zip(self.names, inputs)))

    return Ort(), {}


def load_executorch(path: str, threads: int) -> tuple[Any, dict[str, Any]]:
    """The ``.pte``'s ``forward`` on the ExecuTorch runtime (its process-wide thread pool, sized once)."""
    from edgest_executorch.device import ExecuTorchRunner

    runner = ExecuTorchRunner(path, threads, {"delegated_nodes": 1})
    return runner, {"pool_threads": runner.threads}


def load_openvino(path: str, threads: int, hint: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The IR on the CPU plugin in latency mode; ``hint`` the INFERENCE_PRECISION_HINT (None: the plugin's default)."""
    import openvino as ov
    from edgest_openvino.device import execution_facts

    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if hint:
        config["INFERENCE_PRECISION_HINT"] = hint
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request, outputs = compiled.create_infer_request(), list(compiled.outputs)

    class OV:
        def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            # share_inputs=True: what OpenVINO's documented call, compiled_model(inputs), does (and edgest's runner)
            results = request.infer(list(inputs), share_inputs=True, share_outputs=False)
            return [results[o] for o in outputs]

    facts = execution_facts(compiled)
    return OV(), {"executes": facts["execution_precision"], "compute_layers": facts["compute_layers_by_precision"],
                  **ov_float_layers(compiled)}


def ov_float_layers(compiled: Any) -> dict[str, Any]:
    """For an int8 model: the names of the compute layers the CPU plugin still runs in a float precision."""
    from edgest_openvino.device import COMPUTE_LAYERS

    layers = [(op.get_friendly_name(), op.get_rt_info()["runtimePrecision"].astype(str))
              for op in compiled.get_runtime_model().get_ordered_ops()
              if op.get_rt_info()["layerType"].astype(str) in COMPUTE_LAYERS]
    if not any(p in ("u8", "i8") for _, p in layers):
        return {}
    return {"float_compute_layers": [f"{name} ({p})" for name, p in layers if p not in ("u8", "i8")]}


def load_edgest(target: str, precision: str, path: str, threads: int) -> tuple[Any, dict[str, Any]]:
    """An edgest artifact by its target's runner (:func:`edgest.checks.retime.retime`'s way)."""
    from edgest.plugins import get_registry

    options = {"precision": precision} if target == "openvino" and precision != "int8" else {}
    runner = get_registry().target(target)(**options).load(Path(path), threads)
    facts = runner.facts() if hasattr(runner, "facts") else {}
    if not facts:
        return runner, {}
    return runner, {"executes": facts["execution_precision"], "compute_layers": facts["compute_layers_by_precision"],
                    **ov_float_layers(runner.compiled)}


#: ONNX ops that do the arithmetic; an int8 one reads a DequantizeLinear output (QDQ) or is an integer op
ONNX_COMPUTE = ("Conv", "ConvTranspose", "MatMul", "Gemm", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger")


def onnx_compute_layers(path: str) -> dict[str, int]:
    """How many of the ONNX file's compute nodes take a dequantised (int8) input and how many stay float."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    dq = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    counts = {"int8": 0, "float": 0}
    for n in graph.node:
        if n.op_type in ONNX_COMPUTE:
            counts["int8" if n.op_type not in ONNX_COMPUTE[:4] or (n.input and n.input[0] in dq) else "float"] += 1
    return counts


def load(candidate: dict[str, Any], module: Any, threads: int, example: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """The runner of one candidate row (see :mod:`peers_lib.prepare` and :mod:`peers_lib.edgest_side`)."""
    runner, facts = _load(candidate, module, threads, example)
    if str(candidate.get("path", "")).endswith(".onnx"):
        facts = {**facts, "compute_layers": onnx_compute_layers(candidate["path"])}
    return runner, facts


def _load(candidate: dict[str, Any], module: Any, threads: int, example: np.ndarray) -> tuple[Any, dict[str, Any]]:
    kind = candidate["runner"]
    if candidate["side"] == "edgest":
        return load_edgest(candidate["target"], candidate["precision"], candidate["path"], threads)
    if kind == "eager":
        return load_eager(module, threads)
    if kind == "torch_compile":
        return load_torch_compile(module, threads, example)
    if kind == "ort":
        return load_ort(candidate["path"], threads)
    if kind == "executorch":
        return load_executorch(candidate["path"], threads)
    if kind == "openvino":
        return load_openvino(candidate["path"], threads, candidate["options"].get("hint"))
    raise ValueError(f"unknown runner '{kind}'")
