"""Weights that make the zoo's spiking models fire: a stand-in for training in tests.

At the official init every eval-mode BatchNorm is an identity and the tiny spiking LMUFormer
never reaches threshold, so its output is all zeros and the accuracy check refuses to judge it.
Random BN affines plus statistics measured on random inputs give a healthy spike rate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def calibrate_bns(model: torch.nn.Module, make_input: Callable[[], torch.Tensor], seed: int = 1) -> torch.nn.Module:
    """Random BN affines, BN statistics from two batches of ``make_input()``; returns ``model`` in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for bn in model.modules():
        if isinstance(bn, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            bn.momentum = None  # cumulative average over the calibration batches
            bn.weight.data.copy_(torch.rand(bn.num_features, generator=g) * 0.7 + 0.8)
            bn.bias.data.copy_(torch.rand(bn.num_features, generator=g) * 0.8 - 0.2)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(make_input())
    return model.eval()
