"""Runs an ``example-pt2`` artifact with only PyTorch and NumPy: no edgest needed.

``edgest bundle`` copies this file into a device bundle (``Pt2Target.device_runner``), and
:meth:`edgest_example_target.target.Pt2Target.load` uses the same runner on the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class Pt2Runner:
    """A ``.pt2`` file loaded with ``torch.export.load``; numpy arrays in, numpy arrays out."""

    def __init__(self, path: str, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()  # what torch really uses, not only what was asked
        self._module: Any = torch.export.load(path).module()

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One inference: the program's inputs in order; every output, in order."""
        import torch

        with torch.no_grad():
            out = self._module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
        return [o.detach().numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]


def load(path: str, threads: int) -> Pt2Runner:
    """The device-runner entry point: the artifact at ``path``, run with ``threads`` threads."""
    return Pt2Runner(path, threads)
