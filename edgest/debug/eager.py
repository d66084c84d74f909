"""Eager PyTorch's value at every probe: each submodule's output, caught with forward hooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def module_outputs(module: torch.nn.Module, inputs: Sequence[Sequence[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """Dotted module path → its output on each input set, for every submodule that returns one float tensor.

    A module called more than once in a forward keeps its last call's output (as
    :func:`edgest.debug.probes.module_exits` does in the graph). The top module is left out.
    """
    import torch

    seen: dict[str, Any] = {}
    handles = []
    for name, sub in module.named_modules():
        if name:
            handles.append(sub.register_forward_hook(lambda _m, _a, out, name=name: seen.__setitem__(name, out)))
    runs: list[dict[str, np.ndarray]] = []
    try:
        with torch.no_grad():
            for xs in inputs:
                seen.clear()
                module(*(torch.from_numpy(np.asarray(x)) for x in xs))
                runs.append({k: v.detach().float().numpy().copy() for k, v in seen.items()
                             if isinstance(v, torch.Tensor) and v.is_floating_point()})
    finally:
        for h in handles:
            h.remove()
    common = set.intersection(*(set(r) for r in runs)) if runs else set()
    return {k: [r[k] for r in runs] for k in runs[0] if k in common} if runs else {}
