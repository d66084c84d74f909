"""ONNX int8 (ONNX Runtime QDQ): transformers meet the int8 limits, and --quant-skip finds and keeps Linear layers float."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import edgest
from edgest.checks.accuracy import LIMITS
from edgest.errors import BadInput
from edgest.plugins import new_plugin_manager

onnx_plugin = pytest.importorskip("edgest_onnx.plugin", reason="edgest-onnx not installed (pip install -e targets/onnx)")
zoo_plugin = pytest.importorskip("edgest_models.plugin", reason="edgest-models not installed (pip install -e models)")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")


@pytest.fixture(scope="module")
def registry():
    """Only the zoo and this target: other plugins cannot break these tests."""
    pm = new_plugin_manager(entry_points=False)
    pm.add(zoo_plugin, "models")
    pm.add(onnx_plugin, "onnx")
    return pm.registry


def _int8(model, registry, out, skip=(), shape=None, calibration_size=8):
    return edgest.compile(model, "onnx", out_dir=out, precision="int8", samples=4, latency=None, registry=registry,
                          input_shape=shape, passes=[("quantize", {"calibration_size": calibration_size, "skip": list(skip)})])


def _float_weight_nodes(path) -> set[str]:
    """Nodes of the ONNX file that multiply by a float 2-D weight (so were left float)."""
    import onnx

    graph = onnx.load(str(path)).graph
    floats = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2}
    return {n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and any(i in floats for i in n.input)}


def test_vivit_int8_meets_the_limits(registry, tmp_path):
    report = _int8("vivit_fa_tiny", registry, tmp_path / "r")
    acc = report.check("accuracy")
    assert report.status == "passed", report.error
    assert acc.limits == LIMITS["int8"] and acc.metrics["sqnr_db"] >= LIMITS["int8"]["min_sqnr_db"]
    q = report.artifact.details["quantization"]
    # the residual stream stays float (LayerNorms and the token adds), and so do the logits
    assert q["float_layer_norms"] > 0 and q["float_token_adds"] > 0 and q["float_graph_outputs"] == 1
    assert report.artifact.size_bytes < 0.5 * q["float_size_bytes"]
    assert "LayerNorms and" in report.passes[0].summary and "token-sequence Adds kept float" in report.passes[0].summary
    assert not _float_weight_nodes(tmp_path / "r" / "model.onnx")  # every Linear is int8


def test_quant_skip_finds_vivit_linears_by_module_name(registry, tmp_path):
    report = _int8("vivit_fa_tiny", registry, tmp_path / "r", skip=["head", "spatial.blocks.0.mlp.fc1"])
    assert report.status == "passed", report.error
    q = report.artifact.details["quantization"]
    assert q["nodes_excluded"] == 2 and q["skip"] == ["head", "spatial.blocks.0.mlp.fc1"]
    kept = _float_weight_nodes(tmp_path / "r" / "model.onnx")
    assert len(kept) == 2, kept  # the head's Gemm and fc1's MatMul, whose weight onnxsim renamed


class _Blocks(torch.nn.Module):
    """Two pre-norm MLP blocks on tokens. onnxsim keeps the bias-free ``mlp.0`` MatMul's name but not its weight's
    (``val_N``), and turns ``mlp.2`` (MatMul + bias Add) into new, newly named Reshape → Gemm → Reshape nodes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.blocks = torch.nn.ModuleList(torch.nn.ModuleDict({
            "norm": torch.nn.LayerNorm(16),
            "mlp": torch.nn.Sequential(torch.nn.Linear(16, 32, bias=False), torch.nn.GELU(), torch.nn.Linear(32, 16)),
        }) for _ in range(2))
        self.head = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = x + b["mlp"](b["norm"](x))
        return self.head(x[:, 0])


def test_module_names_survive_onnxsim(registry, tmp_path):
    import onnx
    from edgest_onnx import scopes
    from edgest_onnx.quantizer import _nodes_to_exclude

    x = torch.randn(1, 5, 16)
    lowered = registry.target("onnx")().lower(torch.export.export(_Blocks().eval(), (x,)), (x,), tmp_path)
    assert lowered.details["onnxsim"] == "applied"
    model = onnx.load(str(lowered.path))
    modules = scopes.modules_of(model)
    inits = {t.name for t in model.graph.initializer}
    layers = {n.name: modules.get(n.name) for n in model.graph.node if n.op_type in ("MatMul", "Gemm")}
    assert sorted(layers.values()) == ["blocks.0.mlp.0", "blocks.0.mlp.2", "blocks.1.mlp.0", "blocks.1.mlp.2", "head"]
    (fc,) = [n for n in model.graph.node if layers.get(n.name) == "blocks.1.mlp.0"]
    assert not any(i.startswith("blocks.") for i in fc.input if i in inits)  # no weight name to go by
    assert _nodes_to_exclude(model.graph, ["blocks.1.mlp.0"], modules) == [fc.name]
    (fc2,) = [n for n in layers if layers[n] == "blocks.1.mlp.2"]
    block = _nodes_to_exclude(model.graph, ["blocks.1"], modules)
    assert {fc.name, fc2} < set(block) and len(block) >= 4  # norm, both Linears, GELU
    with pytest.raises(BadInput, match=r"'blocks\.7' matches no node .* e\.g\. blocks\.0\.mlp\.0"):
        _nodes_to_exclude(model.graph, ["blocks.7"], modules)


class _ReluOutlierNet(torch.nn.Module):
    """An MLP whose fc2 (after a ReLU) has huge weights on an input that is always 0: per-tensor int8 ruins it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = torch.nn.Linear(32, 64), torch.nn.Linear(64, 64)
        self.fc3, self.head = torch.nn.Linear(64, 64), torch.nn.Linear(64, 10)
        with torch.no_grad():
            self.fc1.weight[0] = 0.0
            self.fc1.bias[0] = 0.0
            self.fc2.weight[:, 0] = 1000.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.head(torch.relu(self.fc3(x)))


def test_skipped_linear_between_quantized_neighbours_stays_float(registry, tmp_path):
    """ORT's WeightBiasQuantization would quantise fc2's weights per-tensor at session start (DQ → Gemm → Relu → Q)."""
    import onnx
    import onnxruntime as ort

    report = _int8(_ReluOutlierNet().eval(), registry, tmp_path / "r", skip=["fc2"], shape=(1, 32), calibration_size=4)
    assert report.status == "passed", report.error
    assert report.artifact.details["quantization"]["skipped_float_inputs"] == 1
    # what ONNX Runtime runs after its own graph optimisations: fc2 still multiplies by its float weight
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(tmp_path / "r" / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(tmp_path / "optimised.onnx")).graph
    weights = {t.name: t for t in graph.initializer}
    fc2 = [n for n in graph.node if "fc2.weight" in n.input]
    assert len(fc2) == 1 and weights["fc2.weight"].data_type == onnx.TensorProto.FLOAT
    assert np.isclose(onnx.numpy_helper.to_array(weights["fc2.weight"])[:, 0], 1000.0).all()
