"""A forward's result as a flat list of arrays, so every output of a model is compared.

A model may return a tensor, or a tuple, list or dict of them (nested, as ``torch.export``
flattens them too); ``None`` inside a container is skipped (export drops it as well). What
edgest cannot compare (``None`` alone, Python numbers, strings, integer or boolean tensors,
empty tensors or containers) is one :class:`~edgest.errors.BadInput` line naming the model and
the output, and saying what edgest accepts. A 0-d tensor (a scalar loss or score) becomes a
1-element array, so every output has a last axis.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgest.errors import BadInput

#: what a forward may return, for the error lines
ACCEPTS = "edgest compares float tensors: return one, or a tuple, list or dict of them"


def _array(obj: Any) -> np.ndarray | None:
    """A NumPy copy of a tensor or array (float32 for half types NumPy lacks), or None for anything else."""
    if isinstance(obj, np.ndarray):
        return obj
    torch = sys.modules.get("torch")  # a tensor means torch is loaded; outputs of a runner are NumPy already
    if torch is None or not isinstance(obj, torch.Tensor):
        return None
    t = obj.detach().cpu()
    if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32, torch.float64):
        t = t.float()  # bf16 and the float8 types have no NumPy dtype
    return t.resolve_conj().numpy()


def _a(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _leaves(obj: Any, path: str, where: str, out: list[np.ndarray]) -> None:
    label = f"output {path}" if path else "its output"
    if isinstance(obj, Mapping) or isinstance(obj, (tuple, list)):
        items = list(obj.items()) if isinstance(obj, Mapping) else list(enumerate(obj))
        if not items:
            raise BadInput(f"{where} returns an empty {type(obj).__name__} as {label}; {ACCEPTS}")
        for key, value in items:
            if value is not None:  # torch.export drops None outputs: so does the comparison
                _leaves(value, f"{path}[{key!r}]", where, out)
        return
    arr = _array(obj)
    if arr is None:
        raise BadInput(f"{where} returns {_a(type(obj).__name__)} as {label}, not a tensor; {ACCEPTS}")
    if arr.dtype.kind != "f":
        what = "complex" if arr.dtype.kind == "c" else str(arr.dtype)
        raise BadInput(f"{where} returns {_a(what)} tensor as {label}; {ACCEPTS} (cast it with .float())")
    if arr.size == 0:
        raise BadInput(f"{where} returns an empty tensor (shape {tuple(arr.shape)}) as {label}; {ACCEPTS}")
    out.append(np.atleast_1d(arr))


def flatten_outputs(obj: Any, where: str) -> list[np.ndarray]:
    """``obj`` (a forward's result) as a list of float arrays in output order; BadInput naming ``where`` otherwise.

    ``where`` names the model in the message, e.g. ``"model file 'net.py'"``.
    """
    if obj is None:
        raise BadInput(f"{where} returns None; {ACCEPTS} (does forward miss a return?)")
    out: list[np.ndarray] = []
    _leaves(obj, "", where, out)
    if not out:
        raise BadInput(f"{where} returns only None values; {ACCEPTS}")
    return out


def forward_outputs(module: Any, args: Sequence[Any], where: str) -> list[np.ndarray]:
    """``module(*args)`` flattened (:func:`flatten_outputs`), float32; a forward that exits is BadInput, not an exit.

    A user's forward that calls ``sys.exit`` (or argparse) would otherwise end edgest with that
    code and without a word.
    """
    try:
        result = module(*args)
    except SystemExit as exc:
        raise BadInput(f"{where} exited (SystemExit {exc.code}) while its forward ran; "
                       "remove the sys.exit or argument parsing from forward") from None
    return [a.astype(np.float32, copy=False) for a in flatten_outputs(result, where)]
