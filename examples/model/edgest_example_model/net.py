"""A tiny (2+1)D video classifier: ``(B, 3, T, H, W)`` clips → ``(B, num_classes)`` logits.

Spatial 1×3×3 and temporal 3×1×1 convolutions (R(2+1)D style), BatchNorm and ReLU, one strided
3-D stage, global average pooling and a linear head. Any T, H, W work (pooling is adaptive),
so ``--input-shape`` can change the clip length and size as well as the batch.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm3d(cout), nn.ReLU())


class TinyVideoNet(nn.Module):
    """(2+1)D stem, one strided 3-D stage, global pooling, linear head."""

    def __init__(self, num_classes: int = 10, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(3, width, (1, 3, 3), (1, 2, 2)),       # spatial
            _block(width, width, (3, 1, 1), (1, 1, 1)),   # temporal
            _block(width, 2 * width, (3, 3, 3), (2, 2, 2)),
        )
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(clip)), 1))
