"""Acceptance tests for edgest_models.squeezetime (numbers from the SqueezeTime paper/official code)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from edgest_models.squeezetime import CONFIGS, CTL, SqueezeTime, squeezetime, squeezetime_tiny


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _tiny_input(image_size: int = 64) -> torch.Tensor:
    cfg = CONFIGS["squeezetime_tiny"]
    return torch.randn(1, 3, cfg["num_frames"], image_size, image_size)


@pytest.fixture(scope="module")
def full_model() -> SqueezeTime:
    torch.manual_seed(0)
    return squeezetime().eval()


def test_full_param_counts(full_model: SqueezeTime) -> None:
    assert _n_params(full_model) == 29_706_688
    assert _n_params(full_model) - _n_params(full_model.fc) == 28_887_088


def test_ctl_param_count() -> None:
    assert _n_params(CTL(64, 56)) == 130_656


def test_full_forward_shape_and_macs(full_model: SqueezeTime) -> None:
    cfg = CONFIGS["squeezetime"]
    x = torch.randn(1, 3, cfg["num_frames"], cfg["image_size"], cfg["image_size"])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = full_model(x)
    assert y.shape == (1, 400)
    assert torch.isfinite(y).all()
    macs = counter.get_total_flops() / 2  # FlopCounterMode reports 2 FLOPs per MAC
    assert macs == pytest.approx(5.48e9, rel=0.01)


def test_configs_describe_input_shapes() -> None:
    assert set(CONFIGS) == {"squeezetime", "squeezetime_tiny"}
    for cfg in CONFIGS.values():
        assert {"num_frames", "image_size", "num_classes"} <= cfg.keys()
    m = squeezetime_tiny()
    cfg = CONFIGS["squeezetime_tiny"]
    assert (m.num_frames, m.image_size, m.num_classes) == (cfg["num_frames"], cfg["image_size"], cfg["num_classes"])


def test_tiny_shape_and_size() -> None:
    m = squeezetime_tiny().eval()
    assert _n_params(m) < 1_000_000
    with torch.no_grad():
        y = m(_tiny_input())
    assert y.shape == (1, 10)
    assert torch.isfinite(y).all()


def test_tiny_deterministic_init() -> None:
    torch.manual_seed(0)
    a = squeezetime_tiny().state_dict()
    torch.manual_seed(0)
    b = squeezetime_tiny().state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("image_size", [64, 96])  # 96: pos_embed resized in every stage
def test_tiny_export_matches_eager(image_size: int) -> None:
    torch.manual_seed(0)
    m = squeezetime_tiny().eval()
    x = _tiny_input(image_size)
    ep = torch.export.export(m, (x,), strict=False)
    with torch.no_grad():
        ref = m(x)
        out = ep.module()(x)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)


def test_pos_embed_resize_path() -> None:
    torch.manual_seed(0)
    m = squeezetime_tiny().eval()
    ctl = m.layer1[0].ctl
    # Same size: no interpolation, the parameter itself is used.
    assert ctl._pos(16, 16) is ctl.pos_embed
    # align_corners=True keeps the corner values exactly when resizing.
    big = ctl._pos(24, 24)
    assert big.shape == (1, 16, 24, 24)
    assert torch.allclose(big[..., 0, 0], ctl.pos_embed[..., 0, 0])
    assert torch.allclose(big[..., -1, -1], ctl.pos_embed[..., -1, -1])
    # Full forward at sizes that differ from pos_dims (incl. a 1x1 last stage) is stable.
    for size in (32, 96):
        x = _tiny_input(size)
        with torch.no_grad():
            y1, y2 = m(x), m(x)
        assert y1.shape == (1, 10)
        assert torch.isfinite(y1).all()
        assert torch.equal(y1, y2)
