"""Acceptance tests for edgest_models.emov2 (numbers from the EMOv2 paper/official code)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import edgest
from edgest_models import emov2 as E
from edgest_models.emov2 import CONFIGS, EMOv2, EMOv2Video, HybridWindowAttention

IMAGE_STATS = {  # name: (params, MACs at 1x3x224x224)
    "emov2_1m": (1_460_844, 0.280e9),
    "emov2_2m": (2_384_312, 0.481e9),
    "emov2_5m": (5_126_440, 1.025e9),
    # official EMO2_20M_k5_hybrid (no README figure): counted by formula from the official code's modules
    "emov2_20m": (20_195_208, 3.997e9),
}


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _macs(m: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        m(x)
    return counter.get_total_flops() / 2  # FlopCounterMode reports 2 FLOPs per MAC


def _randomize(m: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Make eval outputs input-sensitive: at init, layer scale 1e-6 and PyTorch's default conv init
    shrink the signal so much that logits barely depend on the input."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * (2 / fan_in) ** 0.5)
                if mod.bias is not None:
                    mod.bias.zero_()
        for name, p in m.named_parameters():
            if name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m.eval()


def _tiny(seed: int = 0) -> EMOv2Video:
    torch.manual_seed(seed)
    return _randomize(E.emov2_tiny_video(), seed)


def _tiny_input(batch: int = 1) -> torch.Tensor:
    cfg = CONFIGS["emov2_tiny_video"]
    return torch.randn(batch, 3, cfg["num_frames"], cfg["image_size"], cfg["image_size"])


@pytest.mark.parametrize("name", list(IMAGE_STATS))
def test_image_params_and_macs(name: str) -> None:
    params, macs = IMAGE_STATS[name]
    with torch.device("meta"):  # no weights allocated, no compute: shapes only
        m = getattr(E, name)().eval()
        x = torch.empty(1, 3, 224, 224)
        measured = _macs(m, x)
        video = getattr(E, f"{name}_video")(num_classes=1000)
    assert _n_params(m) == params
    assert measured == pytest.approx(macs, rel=0.02)
    # The video wrapper adds no parameters: same network, frames folded into the batch.
    assert _n_params(video) == params
    assert video.state_dict().keys() == m.state_dict().keys()


def test_meta_flop_count_matches_real() -> None:
    x = _tiny_input()
    real = _macs(_tiny(), x)
    with torch.device("meta"):
        meta = _macs(E.emov2_tiny_video().eval(), torch.empty(x.shape))
    assert real == meta > 0


def test_official_state_dict_layout() -> None:
    with torch.device("meta"):
        sd = E.emov2_1m().state_dict()
    for key in ("stage0.0.conv.weight", "stage0.0.conv.bias", "stage1.0.eops.0.net.conv.bias",
                "stage3.1.eops.0.qk.conv.weight", "stage3.1.eops.0.v.conv.bias", "stage3.1.norm.norm.weight",
                "stage4.2.conv_local.norm.running_var", "stage4.0.ls.gamma", "norm.norm.weight", "head.weight"):
        assert key in sd, key
    assert "stage3.1.proj.conv.bias" not in sd and "stage3.1.conv_local.conv.bias" not in sd


def test_configs_describe_inputs() -> None:
    assert set(CONFIGS) == {*IMAGE_STATS, *(f"{n}_video" for n in IMAGE_STATS), "emov2_tiny_video"}
    for name, cfg in CONFIGS.items():
        assert {"image_size", "num_classes"} <= cfg.keys()
        assert ("num_frames" in cfg) == name.endswith("_video")
        with torch.device("meta"):
            m = getattr(E, name)()
        assert (m.image_size, m.num_classes) == (cfg["image_size"], cfg["num_classes"])
        if name.endswith("_video"):
            assert isinstance(m, EMOv2Video) and m.num_frames == cfg["num_frames"]
    assert CONFIGS["emov2_1m_video"]["num_frames"] == 8 and CONFIGS["emov2_1m_video"]["image_size"] == 224


def _naive_attention(mod: HybridWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Index-gather reference for local + spanning window attention (official EW_MHSA_Hybrid)."""
    b, _, h, w = x.shape
    ws = mod.window_size
    xp = F.pad(x, (0, (-w) % ws, 0, (-h) % ws))
    hp, wp = xp.shape[-2:]
    n1, n2 = hp // ws, wp // ws
    q, k = mod.qk(xp).flatten(2).chunk(2, dim=1)
    v = mod.v(xp).flatten(2)
    out = torch.zeros_like(v)
    heads = mod.num_heads
    for spanning in (False, True):
        for a in range(n1):
            for c in range(n2):
                rows = [i * n1 + a if spanning else a * ws + i for i in range(ws)]
                cols = [j * n2 + c if spanning else c * ws + j for j in range(ws)]
                idx = torch.tensor([r * wp + s for r in rows for s in cols])
                qi, ki, vi = (t[:, :, idx].reshape(b, heads, -1, len(idx)).transpose(-1, -2) for t in (q, k, v))
                attn = (qi @ ki.transpose(-1, -2) * mod.dim_head**-0.5).softmax(-1)
                out[:, :, idx] += (attn @ vi).transpose(-1, -2).reshape(b, -1, len(idx))
    return out.reshape(b, -1, hp, wp)[:, :, :h, :w]


def test_window_padding_is_exercised_and_matches_reference() -> None:
    m = _tiny()
    cfg = CONFIGS["emov2_tiny_video"]
    attn = [mod for mod in m.modules() if isinstance(mod, HybridWindowAttention)]
    assert len(attn) == 2  # the non-first blocks of stages 3 and 4
    sizes = {id(attn[0]): cfg["image_size"] // 16, id(attn[1]): cfg["image_size"] // 32}  # 4x4, 2x2 maps
    windows = []
    for mod in attn:
        s = sizes[id(mod)]
        assert mod.pads(s, s) != (0, 0)
        windows.append((s + mod.pads(s, s)[0]) // mod.window_size)
        x = torch.randn(2, mod.dim_in, s, s + 1)  # non-square, different padding per side
        with torch.no_grad():
            assert torch.allclose(mod(x), _naive_attention(mod, x), atol=1e-5, rtol=1e-4)
    assert max(windows) > 1  # several windows: local and spanning grids differ
    # Full-size models at 224: 14x14 and 7x7 maps divide by the window, no padding.
    with torch.device("meta"):
        big = [mod for mod in E.emov2_1m().modules() if isinstance(mod, HybridWindowAttention)]
    assert big and all(mod.pads(14, 14) == mod.pads(7, 7) == (0, 0) for mod in big)


def test_video_matches_per_frame_average() -> None:
    m = _tiny()
    x = _tiny_input(batch=2)
    with torch.no_grad():
        y = m(x)
        frames = torch.stack([EMOv2.forward(m, x[:, :, t]) for t in range(x.shape[2])], dim=1)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 10)
    assert torch.isfinite(y).all()
    assert frames.std(dim=1).mean() > 1e-3  # frames really differ, so averaging is tested
    assert torch.allclose(y, frames.mean(dim=1), atol=1e-5, rtol=1e-5)


def test_full_video_forward_shape() -> None:
    with torch.device("meta"):  # shapes only: the numerics are covered by the tiny model
        y = E.emov2_1m_video().eval()(torch.empty(2, 3, 8, 224, 224))
    assert y.shape == (2, 400)


def _max_rank(ep: torch.export.ExportedProgram) -> int:
    vals = (n.meta.get("val") for n in ep.graph.nodes if n.op == "call_function")
    return max(v.dim() for v in vals if isinstance(v, torch.Tensor))


def _targets(ep: torch.export.ExportedProgram) -> set[str]:
    return {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}


def test_export_image_model() -> None:
    torch.manual_seed(0)
    m = _randomize(E.emov2_1m())
    x = torch.randn(1, 3, 224, 224)
    ep = torch.export.export(m, (x,), strict=False)
    assert _max_rank(ep) <= 6
    with torch.no_grad():
        assert torch.allclose(ep.module()(x), m(x), atol=1e-5, rtol=1e-4)


def test_export_tiny_video() -> None:
    m = _tiny()
    x = _tiny_input()
    ep = torch.export.export(m, (x,), strict=False)
    assert _max_rank(ep) <= 6
    ops = _targets(ep)
    assert "aten.softmax.int" in ops and "aten.pad.default" in ops  # explicit attention, window pad path
    assert not any("scaled_dot_product" in op or "_assert" in op for op in ops)
    with torch.no_grad():
        assert torch.allclose(ep.module()(x), m(x), atol=1e-5, rtol=1e-4)


def test_onnx_compile_tiny_video(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    m = _tiny()
    shape = tuple(_tiny_input().shape)
    report = edgest.compile(m, "onnx", input_shape=shape, out_dir=tmp_path / "r", latency=None, samples=4)
    assert report.status == "passed", report
