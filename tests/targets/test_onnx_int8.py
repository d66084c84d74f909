"""ONNX int8 (ONNX Runtime QDQ): transformers meet the int8 limits, each float rule of edgest_onnx.qdq_rules fixes
what it says on a small model built to show it, and --quant-skip finds and keeps Linear layers float."""

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


def _ort_float_layers(path, tmp_path) -> int:
    """Conv/Gemm/MatMul nodes ONNX Runtime runs in float after its graph optimisations (the int8 ones are fused
    into QLinearConv, QGemm, ...; float ones may be fused with an activation: FusedConv)."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sum(n.op_type.removeprefix("Fused") in ("Conv", "Gemm", "MatMul")
               for n in onnx.load(str(tmp_path / "optimised.onnx")).graph.node)


def test_vivit_int8_meets_the_limits(registry, tmp_path):
    report = _int8("vivit_fa_tiny", registry, tmp_path / "r")
    acc = report.check("accuracy")
    assert report.status == "passed", report.error
    assert acc.limits == LIMITS["int8"] and acc.metrics["sqnr_db"] >= LIMITS["int8"]["min_sqnr_db"]
    q = report.artifact.details["quantization"]
    # the residual stream stays float (LayerNorms, the token adds, the CLS concat), and so do the logits
    assert q["float_layer_norms"] > 0 and q["float_token_adds"] > 0 and q["float_graph_outputs"] == 1
    assert q["float_residual_stream"] > q["float_token_adds"] and q["rule_float_inputs"] > 0
    assert q["float_softmaxes"] == 4  # QLinearSoftmax is slow, and rounds the scores before the exponential
    assert report.artifact.size_bytes < 0.5 * q["float_size_bytes"]
    assert "LayerNorms, " in report.passes[0].summary and "token-sequence Adds" in report.passes[0].summary
    assert not _float_weight_nodes(tmp_path / "r" / "model.onnx")  # every Linear is int8
    # only the patch embedding, a Conv writing the stream, runs float; ONNX Runtime agrees after fusing
    assert q["float_layers"] == 1 and q["layers"] > 20 and f"{q['layers'] - 1} of {q['layers']} layers int8" in report.passes[0].summary
    assert _ort_float_layers(tmp_path / "r" / "model.onnx", tmp_path) == 1


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


# ---------------------------------------------------------------------------------------------- one rule at a time


def _quantize_with(registry, model, shape, tmp_path, monkeypatch, drop=()):
    """Lower ``model``, quantise it with the rules in ``drop`` off, and return (quantize details, SQNR, top-1 agreement)
    of the int8 file vs the float one on fresh normal inputs."""
    import onnxruntime as ort
    from edgest_onnx import qdq_rules
    from edgest_onnx.quantizer import OrtQuantizer

    from edgest.data.calibration import CalibrationSet

    rules = qdq_rules.float_by_rule
    monkeypatch.setattr(qdq_rules, "float_by_rule", lambda m: {k: [] if k in drop else v for k, v in rules(m).items()})
    out = tmp_path / "_".join(("q", *drop))
    out.mkdir()
    x = torch.randn(shape)
    src = registry.target("onnx")().lower(torch.export.export(model.eval(), (x,)), (x,), out).path
    rng = np.random.default_rng(0)
    cal, test = ([rng.standard_normal(shape, dtype=np.float32) for _ in range(32)] for _ in range(2))
    q = OrtQuantizer("int8").quantize_artifact(src, out / "int8.onnx", CalibrationSet([(c,) for c in cal], "normal"), [])

    def run(path):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.stack([session.run(None, {session.get_inputs()[0].name: t})[0] for t in test]).astype(np.float64)

    ref, act = run(src), run(out / "int8.onnx")
    sqnr = 10 * np.log10(np.sum(ref**2) / np.sum((act - ref) ** 2))
    return q.details, sqnr, float(np.mean(ref.argmax(-1) == act.argmax(-1)))


class _PerFrameHead(torch.nn.Module):
    """EMOv2's video head: a Linear per frame, then the mean over frames. Classes 0/1 stretch the logit range,
    classes 2 and 3 are near-ties: rounding the per-frame logits to uint8 flips which one wins."""

    def __init__(self, frames: int = 4, dim: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.frames, self.body, self.head = frames, torch.nn.Linear(dim, dim), torch.nn.Linear(dim, 6)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([-30.0, -20.0, 9.0, 9.0, 0.0, 0.0]))
            self.head.weight[3] = self.head.weight[2] + 0.02 * torch.randn(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.body(x))
        return y.reshape(-1, self.frames, y.shape[-1]).mean(1)


def test_logits_stay_float_up_to_the_output(registry, tmp_path, monkeypatch):
    q, _, agree = _quantize_with(registry, _PerFrameHead(), (8, 16), tmp_path, monkeypatch)
    assert q["float_logits"] == 2 and q["float_layers"] == 0  # the Reshape and the mean; both Linears int8
    _, _, agree_without = _quantize_with(registry, _PerFrameHead(), (8, 16), tmp_path, monkeypatch, drop=("logits",))
    assert agree >= 0.95 and agree_without <= agree - 0.1, (agree, agree_without)


class _SplitConcat(torch.nn.Module):
    """EMOv2's attention input: two projections of very different range concatenated, then sliced apart again."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.dim, self.a, self.b = dim, torch.nn.Linear(dim, dim), torch.nn.Linear(dim, dim)
        self.head = torch.nn.Linear(dim * dim, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = torch.cat([20 * self.a(x), 0.2 * torch.nn.functional.gelu(self.b(x))], dim=-1)
        a, b = c[..., :self.dim], c[..., self.dim:]
        return self.head((a.transpose(-1, -2) @ b).flatten(1))


def test_split_concat_parts_get_their_own_scales(registry, tmp_path, monkeypatch):
    q, sqnr, _ = _quantize_with(registry, _SplitConcat(), (1, 12, 16), tmp_path, monkeypatch)
    assert q["float_split_concats"] == 3 and q["float_layers"] == 0  # Concat and two Slices; every layer int8
    _, sqnr_without, _ = _quantize_with(registry, _SplitConcat(), (1, 12, 16), tmp_path, monkeypatch, drop=("split_concats",))
    assert sqnr >= LIMITS["int8"]["min_sqnr_db"] and sqnr_without < 5.0, (sqnr, sqnr_without)


class _ConvStream(torch.nn.Module):
    """EMOv2's stages: convs write an NCHW residual stream that channels-last LayerNorms read (through a Transpose);
    one channel 100x larger than the rest sets the stream's per-tensor uint8 scale."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.norm1, self.norm2 = torch.nn.LayerNorm(c), torch.nn.LayerNorm(c)
        self.fc1, self.fc2, self.head = torch.nn.Conv2d(c, 2 * c, 1), torch.nn.Conv2d(2 * c, c, 1), torch.nn.Linear(c, 5)
        with torch.no_grad():
            self.stem.weight[0] *= 100

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        s = s + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm1(s.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))))
        return self.head(self.norm2(s.permute(0, 2, 3, 1)).mean((1, 2)))


def test_residual_stream_written_by_convs_stays_float(registry, tmp_path, monkeypatch):
    q, sqnr, _ = _quantize_with(registry, _ConvStream(), (1, 3, 8, 8), tmp_path, monkeypatch)
    # the Add and the Transposes into the LayerNorms; the stem and fc2 write the stream, so they run float
    assert q["float_residual_stream"] == 3 and q["float_layers"] == 2 and q["layers"] == 4
    _, sqnr_without, _ = _quantize_with(registry, _ConvStream(), (1, 3, 8, 8), tmp_path, monkeypatch, drop=("residual_stream",))
    assert sqnr >= sqnr_without + 10.0 and sqnr >= 30.0, (sqnr, sqnr_without)
