"""edgest's own weights: ``torch.save(model.state_dict())`` (or a training checkpoint holding it under ``state_dict``,
``model_state_dict``, ``model`` or ``net``), or a safetensors file.

The keys are the model's own names, so the format knows exactly the keys the model has; any
other key is unknown, and the load stops with the missing, unexpected and mismatched keys.
This is the format of ``edgest train``, of user models, and the fallback when a file fits no
release format.

A wrapper's prefix is stripped when every key carries the same one and every key without it is
a model key: ``module.`` (DataParallel, DistributedDataParallel), ``model.`` (a PyTorch Lightning
module's ``state_dict``), ``_orig_mod.`` (``torch.compile``), or any other single prefix of up to
three dotted parts. The load records it (a note, and every key under ``renamed``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from edgest.weights.base import KeyPlan, WeightsFormat

#: where the common prefixes come from, for the record's note
_WRAPPERS = {"module.": "DataParallel/DistributedDataParallel", "model.": "a wrapping module, e.g. PyTorch Lightning",
             "_orig_mod.": "torch.compile"}
#: the longest prefix, in dotted parts, that is stripped
_MAX_PARTS = 3


def common_prefix(keys: list[str], model_keys: frozenset[str]) -> str:
    """The one dotted prefix every key in ``keys`` carries and that leaves model keys when stripped, or ``""``."""
    if not keys or all(k in model_keys for k in keys):
        return ""
    parts = keys[0].split(".")
    for n in range(1, min(_MAX_PARTS, len(parts) - 1) + 1):
        prefix = ".".join(parts[:n]) + "."
        if all(k.startswith(prefix) and k[len(prefix):] in model_keys for k in keys):
            return prefix
    return ""


def prefix_note(prefix: str) -> str:
    """The record's note for a stripped ``prefix``."""
    origin = " ".join(f"({w})" for p, w in _WRAPPERS.items() if prefix.endswith(p) or prefix.startswith(p))
    return f"stripped the prefix '{prefix}' every key carried" + (f" {origin}" if origin else "")


class Native(WeightsFormat):
    name: ClassVar[str] = "edgest"
    summary: ClassVar[str] = "edgest's own state_dict (torch.save(model.state_dict()) or safetensors), any model"
    prefixes: ClassVar[tuple[str, ...]] = ()
    #: a training script's checkpoint dict: PyTorch's tutorial (``model_state_dict``), timm/DeiT (``model``), others
    wrappers: ClassVar[tuple[str, ...]] = ("", "state_dict", "model_state_dict", "model", "net")

    def plan_keys(self, obj: Any, model_keys: frozenset[str]) -> KeyPlan | None:
        found = self.find_state(obj)
        if found is None:
            return None
        source, state = found
        prefix = common_prefix(list(state), model_keys)
        renamed = {k: k[len(prefix):] for k in state if k[len(prefix):] in model_keys}
        notes = (prefix_note(prefix),) if prefix else ()
        return KeyPlan(source, state, renamed, {}, tuple(k for k in state if k not in renamed), notes)
