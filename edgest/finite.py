"""Find NaN and Inf early and say where: in weights, calibration files and eager outputs.

A non-finite value that gets past the readers turns up much later as a meaningless SQNR, a
quantiser scale of NaN, or a JSON writer that refuses ``NaN``. These helpers name the first
place it occurs (a tensor name, a file and element index, a sample) so the error is one line
the user can act on. NumPy for arrays; torch tensors are checked with torch (bf16 has no NumPy
dtype), imported only when given one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def kinds(has_nan: bool, has_inf: bool) -> str:
    """``"NaN"``, ``"Inf"``, ``"NaN/Inf"`` or ``""``."""
    return "/".join(k for k, present in (("NaN", has_nan), ("Inf", has_inf)) if present)


def array_problem(arr: Any) -> str:
    """What is non-finite in a NumPy array ("NaN in 3 values, first at index (0, 2)"), or ``""``."""
    a = np.asarray(arr)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating)):
        return ""
    bad = ~np.isfinite(a)
    if not bad.any():
        return ""
    first = tuple(int(i) for i in np.argwhere(bad)[0]) if a.ndim else ()
    where = f", first at index {first}" if first else ""
    count = int(bad.sum())
    return f"{kinds(bool(np.isnan(a).any()), bool(np.isinf(a).any()))} in {count} value{'s' if count != 1 else ''}{where}"


def tensors_problem(named: Iterable[tuple[str, Any]]) -> str:
    """For ``(name, tensor)`` pairs: "NaN/Inf in 12 tensors, first layer1.0.conv1.weight", or ``""``."""
    import torch

    bad: list[str] = []
    has_nan = has_inf = False
    for name, t in named:
        if (not isinstance(t, torch.Tensor) or not (t.is_floating_point() or t.is_complex()) or t.is_meta
                or t.layout != torch.strided):  # sparse tensors: load_state_dict says what is wrong with them
            continue
        if bool(torch.isfinite(t).all()):
            continue
        bad.append(str(name))
        has_nan |= bool(torch.isnan(t).any())
        has_inf |= bool(torch.isinf(t).any())
    if not bad:
        return ""
    return f"{kinds(has_nan, has_inf)} in {len(bad)} tensor{'s' if len(bad) != 1 else ''}, first {bad[0]}"


def samples_problem(samples: Iterable[Any]) -> str:
    """For per-sample outputs (an array, or a list of arrays, per sample): "NaN in 3 of 8 samples, first sample 0"."""
    total, bad, has_nan, has_inf = 0, [], False, False
    for i, sample in enumerate(samples):
        total += 1
        arrays = sample if isinstance(sample, (list, tuple)) else [sample]
        found = False
        for a in arrays:
            a = np.asarray(a)
            if a.dtype.kind not in "fc" or np.isfinite(a).all():
                continue
            found, has_nan, has_inf = True, has_nan or bool(np.isnan(a).any()), has_inf or bool(np.isinf(a).any())
        if found:
            bad.append(i)
    if not bad:
        return ""
    return f"{kinds(has_nan, has_inf)} in {len(bad)} of {total} samples, first sample {bad[0]}"
