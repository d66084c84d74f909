"""Per-layer int8 sensitivity: leave-one-out through the target's own quantizer.

Quantise everything, then everything but one layer, for each conv/linear layer, and measure the
output against float. The output noise that disappears when a layer stays float is that layer's
share; its SQNR (signal over that share) ranks the layers, worst first. Because it goes through
the target's own quantizer and runtime it works for both stages alike, and "keep layer X float"
in the table is exactly what ``--quant-skip X`` does. It costs one quantisation per layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput

if TYPE_CHECKING:
    import numpy as np
    import torch

#: calibration inputs the sensitivity outputs are measured on (the first ones of the set)
SENSITIVITY_INPUTS = 8


#: ops that only move a weight's values: a layer reads its weight through them (``t`` before ``addmm``)
_WEIGHT_VIEWS = ("t", "permute", "transpose", "view", "reshape", "unsqueeze", "squeeze", "expand", "_to_copy", "clone")


def _weight_readers(program: torch.export.ExportedProgram) -> dict[str, list[str]] | None:
    """Per parameter: the nodes that read it (through :data:`_WEIGHT_VIEWS`); None when the program lifts none."""
    lifted = getattr(program.graph_signature, "inputs_to_parameters", None) or {}
    if not lifted:
        return None
    out: dict[str, list[str]] = {}
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in lifted:
            todo, readers = list(node.users), []
            while todo:
                user = todo.pop()
                op = str(getattr(user.target, "__name__", user.target)).split(".")[0]
                todo += list(user.users) if op in _WEIGHT_VIEWS else []
                readers += [] if op in _WEIGHT_VIEWS else [user.name]
            out[lifted[node.name]] = readers
    return out


def quantizable_layers(program: torch.export.ExportedProgram, skip: Sequence[str] = (), states: int = 0) -> tuple[str, ...]:
    """Conv and linear layers of ``program`` (modules with a weight of 2+ dims), in program order, outside ``skip``.

    Only layers the program runs: a weight no node reads is left out (a streaming step program holds the
    whole model's parameters, its whole-input embedding's too). For a step program (``states`` > 0) so
    is a layer only its state loop reads (:func:`edgest.quantize.state_loop`: it stays float anyway).
    """
    from edgest.quantize.state import state_loop

    readers = _weight_readers(program)
    loop = set(state_loop(program.graph, states))
    out = []
    for key, value in program.state_dict.items():
        if key.endswith(".weight") and getattr(value, "ndim", 0) >= 2:
            name = key[: -len(".weight")]
            read = readers.get(key, []) if readers is not None else [""]
            if read and not set(read) <= loop and not any(name == s or name.startswith(s + ".") for s in skip):
                out.append(name)
    return tuple(out)


def sensitivity_inputs(inputs: Sequence[Any], count: int = SENSITIVITY_INPUTS) -> list[list[Any]]:
    """``count`` of the calibration ``inputs`` the sensitivity outputs are measured on, spread over the set.

    Spread, not the first ones: a streaming compile's set is ordered by step, and its first inputs are
    every sequence's first step, all with the initial (zero) state.
    """
    import numpy as np

    idx = np.unique(np.linspace(0, len(inputs) - 1, num=min(count, len(inputs))).round().astype(int))
    return [list(inputs[int(i)]) for i in idx]


def _noise(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    import numpy as np

    return float(sum(np.sum((np.asarray(o, np.float64) - np.asarray(r, np.float64)) ** 2) for r, o in zip(reference, outputs)))


def _db(signal: float, noise: float) -> float:
    from edgest.checks.accuracy import SQNR_CAP_DB

    return SQNR_CAP_DB if noise <= 0 else min(SQNR_CAP_DB, 10.0 * math.log10(max(signal, 1e-300) / noise))


def sensitivity(
    run: Callable[[tuple[str, ...]], Sequence[np.ndarray]], reference: Sequence[np.ndarray],
    layers: Sequence[str], skip: Sequence[str] = (), base: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Leave-one-out SQNR per quantised layer, worst first.

    ``run(skip)`` quantises with ``skip`` kept float and returns the outputs on the inputs that
    gave ``reference`` (float). Per layer: ``sqnr_db`` = signal over the output noise that goes
    away when the layer stays float; ``sqnr_if_float_db`` = the model's SQNR with the layer
    kept float (what ``--quant-skip LAYER`` gives); ``gain_db`` = how much that adds. A layer
    the quantizer cannot exclude on its own (BadInput) is listed with the reason. ``base``: the
    outputs with only ``skip`` kept float, when the caller has them already.
    """
    import numpy as np

    from edgest.checks.accuracy import compare

    signal = float(sum(np.sum(np.asarray(r, np.float64) ** 2) for r in reference))
    base_out = run(tuple(skip)) if base is None else base
    base = _noise(reference, base_out)
    all_db = _db(signal, base)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for layer in layers:
        try:
            out = run((*skip, layer))
        except BadInput as exc:
            skipped.append({"layer": layer, "reason": str(exc)[:200]})
            continue
        noise = _noise(reference, out)
        if_float = _db(signal, noise)
        rows.append({"layer": layer, "sqnr_db": round(_db(signal, base - noise), 2), "sqnr_if_float_db": round(if_float, 2),
                     "gain_db": round(if_float - all_db, 2), "top1_agreement_if_float": compare(reference, out)["top1_agreement"]})
    rows.sort(key=lambda r: (r["sqnr_db"], -r["gain_db"]))
    return {
        "method": "leave-one-out: quantise all layers, then all but one; a layer's SQNR is the output signal over "
                  "the output noise that goes away when it stays float (lowest = most sensitive)",
        "inputs": len(reference), "sqnr_all_db": round(all_db, 2), "skip": list(skip),
        "top1_agreement_all": compare(reference, base_out)["top1_agreement"], "layers": rows,
        "not_measured": skipped,
    }


