"""int8 on the ExecuTorch target: pre-quantisation rewrites, the ops kept float, LMUFormer lowering, exact spiking-neuron rewrites."""

from __future__ import annotations

import importlib.util

import pytest

import edgest
from edgest.plugins import new_plugin_manager

et_plugin = pytest.importorskip("edgest_executorch.plugin", reason="edgest-executorch not installed (pip install -e targets/executorch)")
zoo_plugin = pytest.importorskip("edgest_models.plugin", reason="edgest-models not installed (pip install -e models)")
torch = pytest.importorskip("torch")

from edgest.testing.folds import bn1d

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("executorch") is None or importlib.util.find_spec("torchao") is None,
    reason="executorch/torchao not installed (pip install -e targets/executorch)",
)


@pytest.fixture(scope="module")
def registry():
    pm = new_plugin_manager(entry_points=False)
    pm.add(zoo_plugin, "models")
    pm.add(et_plugin, "executorch")
    return pm.registry


class _BatchNorms(torch.nn.Module):
    """conv → ReLU → BN (standalone), conv → BN with the conv output also read by an add, conv → BN (foldable)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2, self.c3 = (torch.nn.Conv1d(6, 6, 3, padding=1, bias=False) for _ in range(3))
        self.b1, self.b2, self.b3 = bn1d(6, 1), bn1d(6, 2), bn1d(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.b1(self.c1(x).relu())
        y = self.c2(x)
        x = y + self.b2(y)
        return self.b3(self.c3(x))


def _prepared_without_annotations(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from edgest_executorch.quantizer import _config

    quantizer = XNNPACKQuantizer().set_global(_config(dynamic=False))
    quantizer.set_filter_function(lambda node: False)
    return prepare_pt2e(gm, quantizer)


def test_batch_norms_prepare_pt2e_would_get_wrong_become_equivalent_depthwise_convs():
    from edgest.quantize.prequant import batch_norm_as_depthwise_conv

    net, x = _BatchNorms().eval(), torch.randn(2, 6, 10)
    gm = torch.export.export(net, (x,), strict=False).module()
    assert batch_norm_as_depthwise_conv(gm) == 2  # b1 (after ReLU) and b2 (its conv has another user); b3 is folded
    depthwise = [n for n in gm.graph.nodes if n.target is torch.ops.aten.conv1d.default and n.args[-1] == 6]
    assert len(depthwise) == 2
    with torch.no_grad():
        torch.testing.assert_close(gm(x), net(x), rtol=1e-5, atol=1e-5)
        # prepare_pt2e folds b3 into c3 only; with nothing annotated it computes what eager does
        torch.testing.assert_close(_prepared_without_annotations(gm)(x), net(x), rtol=1e-5, atol=1e-5)


class _SlicedKernel(torch.nn.Module):
    """A conv whose weight is a buffer sliced to the input length (LMUFormer's LMU memory), then BN."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", torch.randn(8, 1, 6), persistent=False)
        self.bn = bn1d(8, 4)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        n = u.shape[-1]
        return self.bn(torch.nn.functional.conv1d(u, self.kernel[..., 6 - n :]))


def test_a_weight_computed_from_a_buffer_is_folded_into_a_constant():
    from edgest.quantize.prequant import fold_constant_weights

    net, u = _SlicedKernel().eval(), torch.randn(1, 1, 6)
    gm = torch.export.export(net, (u,), strict=False).module()
    assert fold_constant_weights(gm) == 1
    conv = next(n for n in gm.graph.nodes if n.target is torch.ops.aten.conv1d.default)
    assert conv.args[1].op == "get_attr"
    with torch.no_grad():
        torch.testing.assert_close(gm(u), net(u))
        # torchao's conv+BN folding needs the weight as a get_attr ("Expected get_attr node" before)
        torch.testing.assert_close(_prepared_without_annotations(gm)(u), net(u), rtol=1e-5, atol=1e-5)


def test_the_layer_that_computes_the_outputs_stays_float():
    """Its int8 output would clip logits outside the calibrated range (squeezetime_tiny, trained: 16 → 33 dB)."""
    import numpy as np
    from edgest_executorch.quantizer import XnnpackPT2EQuantizer

    from edgest.data.calibration import CalibrationSet
    from edgest.quantize.float_ops import output_layers

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()
    x = torch.randn(1, 3, 8, 8)
    program = torch.export.export(net, (x,), strict=False)
    module = program.module()
    assert [str(n.target) for n in module.graph.nodes if n.name in output_layers(module.graph)] == ["aten.linear.default"]
    rng = np.random.default_rng(0)
    calibration = CalibrationSet([(rng.standard_normal((1, 3, 8, 8), dtype=np.float32),) for _ in range(4)], "noise")
    done = XnnpackPT2EQuantizer("int8").quantize_program(program, (x,), calibration, ())
    graph = done.program.graph
    linear = next(n for n in graph.nodes if n.target is torch.ops.aten.linear.default)
    assert [n for n in graph.nodes if n.op == "output"][0].args[0][0] is linear  # no quantize after it
    assert all("quantized_decomposed" not in str(a.target) for a in linear.all_input_nodes[1:])  # float weight, bias
    assert "dequantize_per_tensor" in str(linear.args[0].target)  # the int8 features it reads
    assert done.details["float_output_ops"] == ["linear"] and done.details["per_channel_weights"] == 1


def _noise_set(shape: tuple[int, ...], count: int, seed: int):
    import numpy as np

    from edgest.data.calibration import CalibrationSet

    rng = np.random.default_rng(seed)
    return CalibrationSet([(rng.standard_normal(shape, dtype=np.float32),) for _ in range(count)], "noise")


def _sqnr_db(net: torch.nn.Module, program: torch.export.ExportedProgram, shape: tuple[int, ...]) -> float:
    xs = [torch.from_numpy(x) for (x,) in _noise_set(shape, 8, seed=1).inputs]
    module = program.module()
    with torch.no_grad():
        ref, out = torch.cat([net(x) for x in xs]), torch.cat([module(x) for x in xs])
    return float(10 * torch.log10((ref**2).sum() / ((ref - out) ** 2).sum()))


class _ClsToken(torch.nn.Module):
    """ViT in small: patch conv → tokens, a small CLS token prepended (cat), positions, LN, MLP, head on the CLS token."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.patch = torch.nn.Conv2d(3, 16, 4, stride=4)
        self.cls = torch.nn.Parameter(0.02 * torch.randn(1, 1, 16, generator=g))
        self.pos = torch.nn.Parameter(0.02 * torch.randn(1, 5, 16, generator=g))
        self.norm, self.fc, self.head = torch.nn.LayerNorm(16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 4)
        with torch.no_grad():
            self.patch.weight.mul_(8)  # patch tokens ~100x the CLS token, as in a trained ViViT

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1) + self.pos
        return self.head(self.fc(self.norm(t))[:, 0].relu())


def test_the_cls_token_cat_stays_float_although_executorchs_cat_annotator_ignores_the_filter():
    """vivit_fe_tiny trained: 14.9 dB on random inputs with the cat int8, 19.7 dB without (24.9 → 31.1 dB on clips)."""
    from unittest import mock

    import edgest_executorch.quantizer as q
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    torch.manual_seed(0)
    net, shape = _ClsToken().eval(), (1, 3, 8, 8)
    program = torch.export.export(net, (torch.randn(shape),), strict=False)
    calibration = _noise_set(shape, 8, seed=0)
    done = q.XnnpackPT2EQuantizer("int8").quantize_program(program, (torch.randn(shape),), calibration, ())
    cat = next(n for n in done.program.graph.nodes if n.target is torch.ops.aten.cat.default)
    assert [str(u.target) for u in cat.users] == ["aten.add.Tensor"]  # no quantize after it
    assert done.details["float_token_ops"] == {"add.Tensor": 1, "cat": 1}
    with mock.patch.object(q, "_xnnpack_quantizer", lambda config: XNNPACKQuantizer().set_global(config)):
        stock = q.XnnpackPT2EQuantizer("int8").quantize_program(program, (torch.randn(shape),), calibration, ())
    # the stock annotator quantises the cat anyway: the CLS token rounds to the patch tokens' step
    assert any("quantize_per_tensor" in str(u.target) for n in stock.program.graph.nodes
               if n.target is torch.ops.aten.cat.default for u in n.users)
    assert _sqnr_db(net, done.program, shape) > 35.0  # stock: ~8 dB
    assert _sqnr_db(net, stock.program, shape) < 15.0


class _AttentionBlock(torch.nn.Module):
    """EMOv2 in small: q/k/v convs → cat → float attention (scale mul, softmax), two attention outputs summed,
    a conv residual into a conv (int8), a residual stream into a LayerNorm (float), head."""

    def __init__(self) -> None:
        super().__init__()
        c = 8
        self.stem, self.qk, self.v = torch.nn.Conv2d(3, c, 3, padding=1), torch.nn.Conv2d(c, 2 * c, 1), torch.nn.Conv2d(c, c, 1)
        self.dw, self.proj = torch.nn.Conv2d(c, c, 3, padding=1, groups=c), torch.nn.Conv2d(c, c, 1)
        self.norm, self.head = torch.nn.LayerNorm(c), torch.nn.Linear(c, 4)

    @staticmethod
    def attend(qkv: torch.Tensor) -> torch.Tensor:
        b, c3, h, w = qkv.shape
        t, c = qkv.flatten(2).transpose(1, 2), c3 // 3
        q, k, v = t[..., :c], t[..., c : 2 * c], t[..., 2 * c :]
        a = ((q @ k.transpose(1, 2)) * c**-0.5).softmax(-1)
        return (a @ v).transpose(1, 2).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x).relu()
        qkv = torch.cat([self.qk(y), self.v(y).relu()], dim=1)
        o = self.attend(qkv) + self.attend(qkv.flip(-1))
        r = y + self.dw(o)
        s = r + self.proj(r)
        return self.head(self.norm(s.permute(0, 2, 3, 1)).mean((1, 2)))


def test_adds_muls_and_cats_without_an_int8_neighbour_stay_float():
    """Their int8 output was dequantised at once (emov2_tiny_video trained: 310 → 115 Q/DQ nodes, 24.7 → 29.2 dB on clips)."""
    from unittest import mock

    import edgest_executorch.quantizer as q

    from edgest.quantize import float_ops
    from edgest.quantize.float_ops import float_islands

    torch.manual_seed(0)
    net, shape = _AttentionBlock().eval(), (1, 3, 6, 6)
    program = torch.export.export(net, (torch.randn(shape),), strict=False)
    module = program.module()
    kinds = {n.name: str(n.target) for n in module.graph.nodes}
    islands = sorted(kinds[n] for n in float_islands(module.graph))
    # the q/k/v cat, both score scales, the sum of the attention outputs, the stream into the LayerNorm
    assert islands == ["aten.add.Tensor"] * 2 + ["aten.cat.default"] + ["aten.mul.Tensor"] * 2
    calibration = _noise_set(shape, 8, seed=0)
    done = q.XnnpackPT2EQuantizer("int8").quantize_program(program, (torch.randn(shape),), calibration, ())
    d = done.details
    assert d["float_islands"] == {"add.Tensor": 2, "cat": 1, "mul.Tensor": 2}
    assert d["ops_annotated_by_kind"]["add.Tensor"] == 1  # y + dw(o): int8 in, int8 out
    with mock.patch.object(float_ops, "float_islands", lambda graph, excluded: set()):
        every = q.XnnpackPT2EQuantizer("int8").quantize_program(program, (torch.randn(shape),), calibration, ())
    assert d["quantize_nodes"] + d["dequantize_nodes"] < (every.details["quantize_nodes"] + every.details["dequantize_nodes"]) / 2
    assert _sqnr_db(net, done.program, shape) >= _sqnr_db(net, every.program, shape)


class _Depthwise(torch.nn.Module):
    """A 5x5 depthwise conv between GELU and SiLU (EMOv2's ``conv_local``), then one between ReLUs (int8 neighbours)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = torch.nn.Conv2d(3, 8, 1), torch.nn.Conv2d(8, 8, 1), torch.nn.Conv2d(8, 4, 1)
        self.dw_float, self.dw_int8 = (torch.nn.Conv2d(8, 8, 5, padding=2, groups=8) for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(torch.nn.functional.silu(self.dw_float(torch.nn.functional.gelu(self.a(x)))))
        return self.c(self.dw_int8(y.relu()).relu())


def test_a_depthwise_conv_between_float_ops_stays_float():
    """It paid a quantise and a dequantise for 25 MACs per value (emov2_1m_video: int8 93 → 85 ms, fp32 100 ms)."""
    from edgest.quantize.float_ops import float_islands, is_spatial_depthwise

    net = _Depthwise().eval()
    module = torch.export.export(net, (torch.randn(1, 3, 8, 8),), strict=False).module()
    convs = [n for n in module.graph.nodes if n.target is torch.ops.aten.conv2d.default]
    assert [is_spatial_depthwise(n) for n in convs] == [False, True, False, True, False]
    assert float_islands(module.graph) == {convs[1].name}
    # BatchNorms rewritten as 1x1 depthwise convs are no spatial depthwise convs: they stay int8
    assert not any(is_spatial_depthwise(n) for n in _bn_graph().nodes if n.target is torch.ops.aten.conv1d.default)


class _Bottleneck(torch.nn.Module):
    """ResNet's residual: relu(bn(conv(x)) + x), then a conv; SqueezeTime's blocks and its gate multiply."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.conv, self.gate, self.out = (torch.nn.Conv2d(4, 4, 1) for _ in range(4))
        self.bn_stem, self.bn = torch.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn_stem(self.stem(x)).relu()
        r = (self.bn(self.conv(y)) + y).relu()
        return self.out(r * self.gate(r).sigmoid())


def test_a_residual_add_after_conv_and_batch_norm_stays_int8():
    """The BN is folded into its conv, so the add reads int8 (squeezetime: 48 adds and 32 muls were kept float for nothing)."""
    from edgest.quantize.float_ops import float_islands

    module = torch.export.export(_Bottleneck().eval(), (torch.randn(1, 4, 6, 6),), strict=False).module()
    kinds = {n.name: str(n.target) for n in module.graph.nodes}
    assert any("batch_norm" in k for k in kinds.values())  # the conv → BN pairs are in the graph the rule reads
    assert float_islands(module.graph) == set()


def _bn_graph() -> torch.fx.Graph:
    from edgest.quantize.prequant import batch_norm_as_depthwise_conv

    gm = torch.export.export(_BatchNorms().eval(), (torch.randn(2, 6, 10),), strict=False).module()
    batch_norm_as_depthwise_conv(gm)
    return gm.graph


def test_lmuformer_int8_lowers_fully_delegated_and_passes(registry, tmp_path):
    """Was "Weight and Input should both be quantized": a float BN (after ReLU) between int8 ops."""
    report = edgest.compile("lmuformer_tiny", "executorch", out_dir=tmp_path / "r", precision="int8",
                            registry=registry, latency=None)
    assert report.status == "passed", report.error
    details = report.artifact.details
    assert details["non_delegated_nodes"] == 0 and details["delegated_subgraphs"] == 1
    quantization = details["quantization"]
    assert quantization["batch_norms_as_depthwise_conv"] == 4 and quantization["constant_weights_folded"] == 1
    acc = report.check("accuracy").metrics
    assert acc["sqnr_db"] >= 30.0 and acc["top1_agreement"] == 1.0


# --------------------------------------------------------------------------- spiking neurons


def _edge_values(c: float) -> torch.Tensor:
    """c, its float neighbours, ±0, small and large values: where a step computed in float could go wrong."""
    t = torch.tensor(c, dtype=torch.float32)
    near = [torch.nextafter(t, torch.tensor(s)).item() for s in (float("inf"), float("-inf"))]
    return torch.tensor([c, *near, 0.0, -0.0, 1e-30, -1e-30, 3e38, -3e38, 0.25, -0.75, 1.0, -1.0, 2.0], dtype=torch.float32)


@pytest.mark.parametrize("c", [1.0, 0.5, -1.0, 0.0, 1e-3])
def test_step_rewrites_equal_the_comparisons_bit_for_bit(c):
    from edgest_executorch.rewrites import compare_as_step, threshold_delegated

    x = _edge_values(c)
    for op in ("gt", "ge", "lt", "le"):
        want = getattr(torch, op)(x, c).float()
        assert torch.equal(compare_as_step(x, op, c), want), op
    for value in (0.0, -2.5):
        got, want = threshold_delegated(x, c, value), torch.nn.functional.threshold(x, c, value)
        assert torch.equal(got, want) or torch.equal(got + 0.0, want + 0.0)  # x * 0 may give -0.0 for 0.0


class _Spiking(torch.nn.Module):
    """Two LIF layers (thresholds 1 and 0.5) from the zoo over the last axis, elementwise maths only.

    No conv or matmul: XNNPACK sums those in another order than ATen, which could move a
    membrane across the threshold; elementwise ops round alike, so the spikes must match exactly.
    """

    def __init__(self) -> None:
        super().__init__()
        from edgest_models.lmuformer import LIF

        self.lif1, self.lif2 = LIF(8), LIF(8, v_threshold=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif2(self.lif1(2.0 * x) + 0.5 * x)


def test_lif_rewrite_is_exact_and_leaves_nothing_on_portable_kernels(registry, tmp_path):
    from edgest_executorch.lowering import lower_to_pte
    from edgest_executorch.rewrites import rewrite_for_xnnpack

    net, x = _Spiking().eval(), torch.randn(2, 8, 6)
    program = torch.export.export(net, (x,), strict=False)
    new, counts = rewrite_for_xnnpack(program)
    assert counts == {"add": 12, "ge": 2, "split": 2, "threshold": 12, "zeros_like": 2}
    with torch.no_grad():
        for seed in range(4):
            xi = torch.randn(2, 8, 6, generator=torch.Generator().manual_seed(seed))
            assert torch.equal(new.module()(xi), net(xi))
    kept = lower_to_pte(program, tmp_path / "a.pte", flavour="xnnpack", decompose=True, rewrite=False)
    assert {"aten.ge.Scalar", "aten.where.self", "aten.full_like"} <= set(kept["non_delegated_ops"])
    done = lower_to_pte(program, tmp_path / "b.pte", flavour="xnnpack", decompose=True)
    assert done["non_delegated_ops"] == {} and done["delegated_subgraphs"] == 1
    report = edgest.compile(net, "executorch", input_shape=(2, 8, 6), out_dir=tmp_path / "r", registry=registry, latency=None)
    assert report.status == "passed", report.error
    assert report.check("accuracy").metrics["max_abs"] == 0.0  # the spikes the runtime computes are eager's
