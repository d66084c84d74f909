"""Checkpoints in each family's official release layout, built from the official module names (no downloads).

Each ``*_keys`` function lists, for an edgest model's state, the key the official code gives the
same tensor. The tables are written here independently of :mod:`edgest.weights` (from the official
sources: xinghaochen/SqueezeTime ``mmaction/models/backbones/SqueezeTime.py``, zeyuliu1037/LMUFormer
``src/lmu_rnn.py`` and ``src/blocks``, timm ``vision_transformer.py``), so a test that loads such a
file checks the loader against a second reading of the official names. :class:`OfficialSqueezeTimeNet`
rebuilds the official ResNet's module tree (names and shapes only, no forward) so the SqueezeTime
table is also checked to produce exactly the official key set.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


# --- SqueezeTime ------------------------------------------------------------------------------------

class _SpatialConv(nn.Module):
    def __init__(self, dim: int, pos_dim: int) -> None:
        super().__init__()
        self.short_conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.glo_conv = nn.Sequential(nn.Conv2d(dim, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.Conv2d(16, 16, 7, padding=3), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.Conv2d(16, dim, 3, padding=1), nn.Sigmoid())
        self.pos_embed = nn.Parameter(torch.zeros(1, 16, pos_dim, pos_dim))


class _CTL(nn.Module):
    def __init__(self, dim: int, pos_dim: int) -> None:
        super().__init__()
        self.param_conv = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, dim, 1, bias=False), nn.BatchNorm2d(dim),
                                        nn.ReLU(), nn.Conv2d(dim, dim, 1, bias=False), nn.Sigmoid())
        self.temporal_conv = nn.Conv2d(dim, dim, 1, bias=False)
        self.spatial_conv = _SpatialConv(dim, pos_dim)


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int, shortcut: bool, pos_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _CTL(planes, pos_dim)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        if shortcut:
            self.shortcut_conv = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4))
        if stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cin, 2, stride=2, groups=cin), nn.BatchNorm2d(cin))


class OfficialSqueezeTimeNet(nn.Module):
    """The official ``ResNet`` (Bottleneck) module tree: attribute names and shapes, for the key set only."""

    def __init__(self, frames: int, layers: tuple[int, ...], planes: tuple[int, ...], pos_dims: tuple[int, ...],
                 stem: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3 * frames, stem, 5, stride=2, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        cin = stem
        for i, (n, p, pd) in enumerate(zip(layers, planes, pos_dims)):
            blocks = [_Bottleneck(cin, p, 1 if i == 0 else 2, cin != p * 4, pd)]
            cin = p * 4
            blocks += [_Bottleneck(cin, p, 1, False, pd) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))


_SQUEEZETIME_BLOCK = (  # edgest name inside a block -> official name inside a block
    ("ctl.gate.1.", "conv2.param_conv.1."), ("ctl.gate.2.", "conv2.param_conv.2."), ("ctl.gate.4.", "conv2.param_conv.4."),
    ("ctl.temporal.", "conv2.temporal_conv."), ("ctl.short.", "conv2.spatial_conv.short_conv."),
    ("ctl.glo_in.0.", "conv2.spatial_conv.glo_conv.0."), ("ctl.glo_in.1.", "conv2.spatial_conv.glo_conv.1."),
    ("ctl.glo_out.0.", "conv2.spatial_conv.glo_conv.3."), ("ctl.glo_out.1.", "conv2.spatial_conv.glo_conv.4."),
    ("ctl.glo_out.3.", "conv2.spatial_conv.glo_conv.6."), ("ctl.pos_embed", "conv2.spatial_conv.pos_embed"),
    ("shortcut.", "shortcut_conv."),
)


def squeezetime_net_key(key: str) -> str | None:
    """The official ``ResNet`` name of an edgest SqueezeTime backbone key; None for the head (``fc``)."""
    if key.startswith("fc."):
        return None
    if key.startswith("stem.0."):
        return "conv1." + key[len("stem.0."):]
    if key.startswith("stem.1."):
        return "bn1." + key[len("stem.1."):]
    m = re.match(r"(layer\d\.\d+\.)(.*)", key)
    assert m, key
    rest = m.group(2)
    for ours, theirs in _SQUEEZETIME_BLOCK:
        if rest.startswith(ours):
            return m.group(1) + theirs + rest[len(ours):]
    return key  # conv1, bn1..bn3, conv3, downsample keep their names


def squeezetime_release(state: dict[str, torch.Tensor], backbone_only: bool = False) -> dict[str, torch.Tensor]:
    """An mmaction recognizer state_dict (``backbone.net.*``, ``cls_head.fc_cls.*``), or the bare backbone (pretrain)."""
    out = {}
    for key, value in state.items():
        net = squeezetime_net_key(key)
        if net is None:
            if not backbone_only:
                out["cls_head.fc_cls." + key[len("fc."):]] = value.clone()
        else:
            out[net if backbone_only else "backbone.net." + net] = value.clone()
    return out


def mmengine_checkpoint(state_dict: dict[str, torch.Tensor], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What mmengine's ``save_checkpoint`` writes: meta, state_dict, and training state."""
    return {"meta": {"epoch": 100, "iter": 1000, "mmengine_version": "0.10.4", "dataset_meta": {"num_classes": 10}},
            "state_dict": state_dict, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": []}]},
            "param_schedulers": [{"base_lrs": [0.1], "last_epoch": 100}], **(extra or {})}


# --- LMUFormer --------------------------------------------------------------------------------------

def lmuformer_key(key: str, spiking: bool) -> str:
    """The official name (under DataParallel's ``module.``) of an edgest LMUFormer key."""
    m = re.fullmatch(r"patch_embed\.(convs|bns)\.(\d)\.(.*)", key)
    if m:
        kind, i, rest = m.groups()
        if spiking:
            return f"module.patch_embed.{'proj_conv' if kind == 'convs' else 'proj_bn'}{'' if i == '0' else i}.{rest}"
        return f"module.patch_embed.conv_layers.{i}.{'0' if kind == 'convs' else '3'}.{rest}"
    return "module." + re.sub(r"^blocks\.", "block.", key)


def lmu_buffers(block: int, memory: int, seq_len: int) -> dict[str, torch.Tensor]:
    """The official LMU cell's persistent buffers A, B, H, fft_H (their values play no part in edgest)."""
    p = f"module.block.{block}.attn.lmu."
    return {p + "A": torch.eye(memory), p + "B": torch.ones(memory, 1), p + "H": torch.ones(memory, seq_len),
            p + "fft_H": torch.ones(memory, seq_len + 1)}


# --- timm ViT ---------------------------------------------------------------------------------------

def timm_vit_state(dim: int, depth: int, patch: int, grid: int, classes: int = 1000, seed: int = 0) -> dict[str, torch.Tensor]:
    """A timm ``VisionTransformer`` state_dict (class token, qkv bias, final norm, head), random values."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.05

    state = {"cls_token": r(1, 1, dim), "pos_embed": r(1, 1 + grid * grid, dim),
             "patch_embed.proj.weight": r(dim, 3, patch, patch), "patch_embed.proj.bias": r(dim)}
    for i in range(depth):
        b = f"blocks.{i}."
        state |= {b + "norm1.weight": 1 + r(dim), b + "norm1.bias": r(dim), b + "attn.qkv.weight": r(3 * dim, dim),
                  b + "attn.qkv.bias": r(3 * dim), b + "attn.proj.weight": r(dim, dim), b + "attn.proj.bias": r(dim),
                  b + "norm2.weight": 1 + r(dim), b + "norm2.bias": r(dim), b + "mlp.fc1.weight": r(4 * dim, dim),
                  b + "mlp.fc1.bias": r(4 * dim), b + "mlp.fc2.weight": r(dim, 4 * dim), b + "mlp.fc2.bias": r(dim)}
    return state | {"norm.weight": 1 + r(dim), "norm.bias": r(dim), "head.weight": r(classes, dim), "head.bias": r(classes)}


def randomize(model: nn.Module, seed: int = 1) -> nn.Module:
    """Every float parameter and buffer re-drawn (BN statistics positive), so a load is visible in every tensor."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if name.endswith("running_var")
                        else torch.randn(t.shape, generator=g) * 0.1)
    return model.eval()
