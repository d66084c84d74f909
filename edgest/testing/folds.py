"""Test modules with what torchao's conv+BatchNorm folding cannot take, for quantizers built on it
(NNCF's Torch FX backend, PT2E's ``prepare_pt2e``): see :mod:`edgest.quantize.prequant`."""

from __future__ import annotations

from typing import Any

import torch


def bn1d(c: int, seed: int) -> torch.nn.BatchNorm1d:
    """An eval-mode BatchNorm1d with seeded affine parameters and running statistics far from identity."""
    g = torch.Generator().manual_seed(seed)
    bn = torch.nn.BatchNorm1d(c).eval()
    bn.weight.data, bn.bias.data = torch.rand(c, generator=g) + 0.5, torch.randn(c, generator=g)
    bn.running_mean.data, bn.running_var.data = torch.randn(c, generator=g), torch.rand(c, generator=g) + 0.5
    return bn


class LMUShapes(torch.nn.Module):
    """The two constructs of the spiking LMUFormer that torchao's conv+BN folding cannot take: a conv weight sliced
    from a buffer (exports as alias/slice: "Expected get_attr node"), then BN; a conv whose output an add reads beside
    its BN (folded, the add would read the BN's output). Input (1, 8, 6)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.register_buffer("kernel", torch.randn(8, 8, 6), persistent=False)
        self.bn1, self.conv, self.bn2 = bn1d(8, 1), torch.nn.Conv1d(8, 8, 3, padding=1), bn1d(8, 2)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = self.bn1(torch.nn.functional.conv1d(u, self.kernel[..., 6 - u.shape[-1]:], padding=2))
        y = self.conv(x)
        return y + self.bn2(y)


def quantised_lmu_shapes(quantizer: Any) -> tuple[dict[str, Any], float]:
    """:class:`LMUShapes` quantised by ``quantizer`` (a program quantizer), calibrated on 8 seeded normal inputs:
    the quantizer's details and the SQNR (dB) of the quantised program against eager PyTorch on those inputs."""
    import numpy as np

    from edgest.checks.accuracy import compare
    from edgest.data.calibration import CalibrationSet

    net, u = LMUShapes().eval(), torch.randn(1, 8, 6)
    rng = np.random.default_rng(0)
    calibration = CalibrationSet([(rng.standard_normal((1, 8, 6), dtype=np.float32),) for _ in range(8)],
                                 "seeded normal noise")
    done = quantizer.quantize_program(torch.export.export(net, (u,), strict=False), (u,), calibration, [])
    xs = [torch.from_numpy(x[0]) for x in calibration.inputs]
    with torch.no_grad():
        eager = [net(x).numpy() for x in xs]
        quantised = [done.program.module()(x).numpy() for x in xs]
    return done.details, compare(eager, quantised)["sqnr_db"]
