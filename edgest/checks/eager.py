"""Eager PyTorch on NumPy inputs: the reference every check compares against, at fp32 or a cast dtype."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def eager_outputs(module: Any, inputs: Sequence[Sequence[np.ndarray]], dtype: torch.dtype | None = None) -> list[np.ndarray]:
    """The first output of ``module`` on each input set, as NumPy arrays (no grad).

    With ``dtype`` (e.g. a half-precision copy of the model) the inputs are cast to it and the
    outputs back to float32.
    """
    import torch

    outs = []
    with torch.no_grad():
        for xs in inputs:
            args = [torch.from_numpy(np.asarray(x)) for x in xs]
            y = module(*(a.to(dtype) for a in args) if dtype is not None else args)
            y = y[0] if isinstance(y, (tuple, list)) else y
            outs.append((y.float() if dtype is not None else y).detach().numpy())
    return outs


def eager_output_sets(module: Any, inputs: Sequence[Sequence[np.ndarray]], where: str = "the model") -> list[list[np.ndarray]]:
    """Every output of ``module`` on each input set (tuples, lists and dicts flattened in order), float32.

    A forward that returns None, non-tensors or calls ``sys.exit`` is one BadInput naming ``where``
    (:func:`edgest.checks.outputs.forward_outputs`).
    """
    import torch

    from edgest.checks.outputs import forward_outputs

    with torch.no_grad():
        return [forward_outputs(module, [torch.from_numpy(np.asarray(x)) for x in xs], where) for xs in inputs]
