"""SqueezeTime: a 2D-CNN video classifier that squeezes time into channels.

Reference:
    Zhai et al., "No Time to Waste: Squeeze Time into Channel for Mobile Video
    Understanding", 2024, arXiv:2405.08344 (official code: xinghaochen/SqueezeTime).

The input clip (B, 3, T, H, W) is reshaped to (B, 3*T, H, W) (channel index c*T + t),
after which the network is purely 2D: a ResNet-50 layout whose 3x3 convolutions are
replaced by the Channel-Time Learning (CTL) block.

Faithful to the official implementation:
    * stem Conv5x5/s2 (no bias) -> BN -> ReLU -> MaxPool3/s2;
    * bottleneck downsampling by a depthwise k2/s2 conv (+BN) applied to the block input
      before both paths, and a stride-1 1x1 conv+BN shortcut in the first block of every
      stage (layer1 included, since 64 != 4*64);
    * CTL = temporal branch (1x1 conv on the gated input) + interaction branch
      (3x3 conv "short" path times a sigmoid map from a small 16-channel conv stack with a
      learnable positional embedding, bilinearly resized with align_corners=True when the
      feature size differs from pos_dim);
    * parameter count 29,706,688 (400 classes), ~5.48 GMAC at 1x3x16x224x224.
Variants (``--model-option`` or ``--input-shape``): ``num_frames`` sizes the stem (3*T input
channels; T=8: 29,668,288 parameters, as the official backbone with input_channels=24 and a
2048->400 I2DHead), ``num_classes`` the head (600: Kinetics-600, 51: HMDB51), ``image_size`` the
input only: the positional embeddings keep their official sizes and are resized to the feature
map, as in the official code, so 160x160 has the 224 model's parameters.
Deviations: forward returns logits (the official code applies softmax in eval mode);
conv biases are zero-initialised and pos_embed uses trunc_normal(std=0.02) rather than
He-normal; BN uses PyTorch defaults (eps 1e-5, momentum 0.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgest_models.configs import SQUEEZETIME as CONFIGS

__all__ = ["CTL", "Bottleneck", "SqueezeTime", "squeezetime", "squeezetime_tiny", "CONFIGS"]


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    # "same" padding for odd kernels; the k2/s2 downsample conv uses none.
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if k % 2 else 0, groups=groups, bias=bias)


class CTL(nn.Module):
    """Channel-Time Learning block: temporal (channel) branch + spatio-temporal interaction."""

    def __init__(self, channels: int, pos_dim: int, hidden: int = 16) -> None:
        super().__init__()
        # Channel gate beta = sigmoid(W2 relu(BN(W1 GAP(x)))): re-weights the squeezed time axis.
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            _conv(channels, channels, 1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            _conv(channels, channels, 1),
            nn.Sigmoid(),
        )
        self.temporal = _conv(channels, channels, 1)
        self.short = _conv(channels, channels, 3, bias=True)
        self.glo_in = nn.Sequential(_conv(channels, hidden, 3, bias=True), nn.BatchNorm2d(hidden), nn.ReLU())
        self.pos_embed = nn.Parameter(torch.zeros(1, hidden, pos_dim, pos_dim))
        self.glo_out = nn.Sequential(
            _conv(hidden, hidden, 7, bias=True),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            _conv(hidden, channels, 3, bias=True),
            nn.Sigmoid(),
        )

    def _pos(self, h: int, w: int) -> Tensor:
        # Shapes are static under torch.export, so this Python branch is not data-dependent.
        if tuple(self.pos_embed.shape[-2:]) == (h, w):
            return self.pos_embed
        return F.interpolate(self.pos_embed, size=(h, w), mode="bilinear", align_corners=True)

    def forward(self, x: Tensor) -> Tensor:
        beta = self.gate(x)
        xb = x * beta
        g = self.glo_in(xb)
        g = self.glo_out(g + self._pos(g.shape[-2], g.shape[-1]))
        return self.temporal(xb) + self.short(x) * g


class Bottleneck(nn.Module):
    """ResNet bottleneck (expansion 4) with the 3x3 conv replaced by CTL."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1, shortcut: bool = False, pos_dim: int = 7) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        # Stride-2 blocks downsample the input once (depthwise k2/s2 + BN) for both paths.
        self.downsample = (
            nn.Sequential(_conv(in_ch, in_ch, 2, stride=2, groups=in_ch, bias=True), nn.BatchNorm2d(in_ch))
            if stride != 1
            else nn.Identity()
        )
        self.conv1 = _conv(in_ch, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.ctl = CTL(planes, pos_dim)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, out_ch, 1)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential(_conv(in_ch, out_ch, 1), nn.BatchNorm2d(out_ch)) if shortcut else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.ctl(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class SqueezeTime(nn.Module):
    """SqueezeTime video classifier; input (B, 3, num_frames, H, W), output logits (B, num_classes)."""

    def __init__(
        self,
        num_classes: int = 400,
        num_frames: int = 16,
        image_size: int = 224,
        layers: tuple[int, ...] = (3, 4, 6, 3),
        planes: tuple[int, ...] = (64, 128, 256, 512),
        pos_dims: tuple[int, ...] = (56, 28, 14, 7),
        stem_width: int = 64,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if not len(layers) == len(planes) == len(pos_dims) == 4:
            raise ValueError(f"layers, planes and pos_dims take 4 values each (one per stage), not {len(layers)}, "
                             f"{len(planes)} and {len(pos_dims)}; give 4 comma-separated values, e.g. layers=3,4,6,3")
        self.num_classes, self.num_frames, self.image_size = num_classes, num_frames, image_size
        self.stem = nn.Sequential(
            nn.Conv2d(3 * num_frames, stem_width, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        in_ch, stages = stem_width, []
        for i, (n, p, pd) in enumerate(zip(layers, planes, pos_dims)):
            stride = 1 if i == 0 else 2
            blocks = [Bottleneck(in_ch, p, stride, shortcut=in_ch != p * Bottleneck.expansion, pos_dim=pd)]
            in_ch = p * Bottleneck.expansion
            blocks += [Bottleneck(in_ch, p, 1, pos_dim=pd) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_features = in_ch
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_ch, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # Deterministic given torch's global RNG (module construction order is fixed).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, CTL):
                nn.init.trunc_normal_(m.pos_embed, std=0.02)

    def forward_features(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        x = x.reshape(b, c * t, h, w)  # squeeze time into channels: index c*T + t
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.pool(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.drop(self.forward_features(x)))


def squeezetime(num_classes: int = 400, **kw) -> SqueezeTime:
    """SqueezeTime (ResNet-50 layout), Kinetics-400 config: 16 frames at 224x224."""
    return SqueezeTime(**{**CONFIGS["squeezetime"], "num_classes": num_classes, **kw})


def squeezetime_tiny(num_classes: int = 10, **kw) -> SqueezeTime:
    """Tiny SqueezeTime for tests: 8 frames at 64x64, one block per stage, <1M params."""
    return SqueezeTime(**{**CONFIGS["squeezetime_tiny"], "num_classes": num_classes, **kw})
