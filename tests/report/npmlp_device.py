"""The device runner of the test-only ``npmlp`` target (tests/report/npmlp_plugin.py): NumPy only.

A third-party-style runtime: an ``.npz`` of Linear-ReLU-Linear weights, evaluated with NumPy.
It imports nothing from edgest or torch, so a bundle runs it with only NumPy installed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class NumpyMLPRunner:
    """Linear, ReLU, Linear on float32 NumPy arrays; ``threads`` is recorded (NumPy picks its own)."""

    label = "npmlp (NumPy)"

    def __init__(self, path: str, threads: int) -> None:
        with np.load(path) as weights:
            self.layers = [(weights[f"w{i}"], weights[f"b{i}"]) for i in range(2)]
        self.threads = threads

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One inference: the first (only) input through the two layers."""
        (w0, b0), (w1, b1) = self.layers
        hidden = np.maximum(np.asarray(inputs[0], np.float32) @ w0.T + b0, 0)
        return [hidden @ w1.T + b1]


def load(path: str, threads: int) -> NumpyMLPRunner:
    """The device-runner entry point."""
    return NumpyMLPRunner(path, threads)
