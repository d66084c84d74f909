"""Acceptance tests for edgest_models.vivit (ViViT Factorised Encoder + SFA-ViViT frame adapter)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import edgest
from edgest_models.vivit import (
    CONFIGS,
    Attention,
    TubeletEmbed,
    ViViT,
    vivit_fa_tiny,
    vivit_fe_b,
    vivit_fe_tiny,
)


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _tiny_input(batch: int = 1) -> torch.Tensor:
    cfg = CONFIGS["vivit_fa_tiny"]
    return torch.randn(batch, 3, cfg["num_frames"], cfg["image_size"], cfg["image_size"])


def test_vivit_b_fe_param_count() -> None:
    with torch.device("meta"):
        m = vivit_fe_b(num_classes=400)
    assert _n_params(m) == 115_062_928
    # 12 spatial blocks + tubelet + CLS + 197 positions + final norm; 4 temporal blocks + CLS + 17 positions + norm.
    assert _n_params(m.spatial) == 12 * 7_087_872 + 1_180_416 + 768 + 197 * 768 + 1_536
    assert _n_params(m.temporal) == 4 * 7_087_872 + 768 + 17 * 768 + 1_536
    assert _n_params(m.head) == 307_600
    assert m.adapter is None


def test_tiny_param_counts() -> None:
    # 2x8x8 tubelets on 64x64 frames: 64 patches + CLS; block (width 64, MLP 256) 49,984
    fe, fa = vivit_fe_tiny(), vivit_fa_tiny()
    assert _n_params(fe.spatial) == 2 * 49_984 + (6 * 64 * 64 + 64) + 64 + 65 * 64 + 128
    assert _n_params(fe.temporal) == 49_984 + 64 + 5 * 64 + 128
    assert _n_params(fe) == 180_106
    assert _n_params(fa) == 180_106 + _n_params(fa.adapter) and _n_params(fa.adapter) == 6_208


def test_configs_and_variant_shapes() -> None:
    for name, cfg in CONFIGS.items():
        assert {"num_frames", "image_size", "num_classes"} <= cfg.keys(), name
        assert name.startswith("vivit_fa_") == bool(cfg.get("adapter")), name
    m = vivit_fa_tiny().eval()
    cfg = CONFIGS["vivit_fa_tiny"]
    assert (m.num_frames, m.image_size, m.num_classes) == (cfg["num_frames"], cfg["image_size"], cfg["num_classes"])
    assert m.adapter is not None and _n_params(m) < 300_000
    with torch.no_grad():
        y = m(_tiny_input(2))
    assert y.shape == (2, 10) and torch.isfinite(y).all()


def test_tubelet_conv2d_equals_conv3d() -> None:
    torch.manual_seed(0)
    conv3d = nn.Conv3d(3, 32, (2, 16, 16), stride=(2, 16, 16)).double()
    emb = TubeletEmbed(32, patch_size=16, tubelet=2).double()
    emb.load_conv3d(conv3d)
    x = torch.randn(2, 3, 8, 64, 48, dtype=torch.float64)
    with torch.no_grad():
        ref = conv3d(x)  # (B, D, T/2, h, w)
        out = emb(x)  # (B * T/2, h * w, D)
    ref = ref.permute(0, 2, 3, 4, 1).reshape(2 * 4, 4 * 3, 32)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_attention_is_timm_style() -> None:
    torch.manual_seed(0)
    attn = Attention(64, num_heads=2).eval()
    assert isinstance(attn.qkv, nn.Linear) and isinstance(attn.proj, nn.Linear)
    assert attn.qkv.out_features == 3 * 64 and attn.num_heads == 2 and attn.scale == 32**-0.5
    x = torch.randn(3, 17, 64)
    with torch.no_grad():
        explicit = attn(x)
        attn.fused_attn = True
        fused = attn(x)
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-5)


def test_adapter_is_identity_at_init() -> None:
    """Zero-initialised up-projection: a stage-1 FE checkpoint loads into the FA model unchanged."""
    torch.manual_seed(0)
    fe = vivit_fe_tiny().eval()
    fa = vivit_fa_tiny().eval()
    missing, unexpected = fa.load_state_dict(fe.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("adapter.") for k in missing)
    x = _tiny_input(2)
    with torch.no_grad():
        torch.testing.assert_close(fa(x), fe(x))


def test_freeze_spatial_trains_only_adapter_temporal_head() -> None:
    torch.manual_seed(0)
    m = vivit_fa_tiny().freeze_spatial()
    m.train()
    assert not m.spatial.training and m.temporal.training and m.adapter.training
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(n.split(".")[0] in {"adapter", "temporal", "head"} for n in trainable)
    assert all(p.requires_grad for n, p in m.named_parameters() if n.split(".")[0] in {"adapter", "temporal", "head"})
    assert not any(p.requires_grad for p in m.spatial.parameters())

    seen = {}
    m.spatial.register_forward_hook(lambda mod, inp, out: seen.update(grad=torch.is_grad_enabled(), req=out.requires_grad))
    spatial_before = {k: v.clone() for k, v in m.spatial.state_dict().items()}
    rest_before = {k: v.clone() for k, v in m.state_dict().items() if not k.startswith("spatial.")}
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    x, y = _tiny_input(2), torch.tensor([1, 7])
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    assert seen == {"grad": False, "req": False}  # spatial ran under no_grad: no activations kept
    assert all(p.grad is None for p in m.spatial.parameters())
    for k, v in m.spatial.state_dict().items():
        assert torch.equal(v, spatial_before[k]), k
    changed = {k for k, v in m.state_dict().items() if not k.startswith("spatial.") and not torch.equal(v, rest_before[k])}
    assert any(k.startswith("adapter.") for k in changed)
    assert any(k.startswith("temporal.") for k in changed) and "head.weight" in changed


def _ranks_and_convs(ep: torch.export.ExportedProgram) -> tuple[int, list[tuple[int, ...]]]:
    max_rank, conv_weights = 0, []
    for node in ep.graph.nodes:
        vals = node.meta.get("val")
        for v in vals if isinstance(vals, (tuple, list)) else (vals,):
            if isinstance(v, torch.Tensor):
                max_rank = max(max_rank, v.dim())
        if node.op == "call_function" and "conv" in str(node.target):
            conv_weights.append(tuple(node.args[1].meta["val"].shape))
    return max_rank, conv_weights


def test_export_rank_le_6_and_matches_eager() -> None:
    torch.manual_seed(0)
    m = vivit_fa_tiny().eval()
    x = _tiny_input()
    ep = torch.export.export(m, (x,), strict=False)
    max_rank, conv_weights = _ranks_and_convs(ep)
    assert max_rank == 6  # the tubelet reshape; nothing higher
    assert conv_weights == [(64, 6, 8, 8)]  # one 2-D conv (4-D weight), no 3-D kernels
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), m(x), rtol=1e-5, atol=1e-5)


@pytest.mark.toolchain("onnx")
def test_onnx_compile_passes(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    m: ViViT = vivit_fa_tiny()
    cfg = CONFIGS["vivit_fa_tiny"]
    shape = (1, 3, cfg["num_frames"], cfg["image_size"], cfg["image_size"])
    report = edgest.compile(m, "onnx", input_shape=shape, out_dir=tmp_path / "r", latency=None)
    assert report.status == "passed", report.error
