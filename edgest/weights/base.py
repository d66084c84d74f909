"""The contract of a checkpoint format: find the state dict in a file, map its keys, adapt its tensors.

A format is recognised by structure alone: :meth:`WeightsFormat.plan_keys` says, for every
tensor key in the file, which model key it becomes, that it is deliberately skipped (with the
reason), or that the format does not know it. The share of known keys is how well the file
fits the format (:attr:`KeyPlan.coverage`), which is what detection compares. Only then does
:meth:`WeightsFormat.adapt` look at the model: resize, inflate, or leave parts at their
initialisation, each recorded; a shape it cannot reconcile is a :class:`FormatMismatch` with the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch

#: the tensors of a BatchNorm, as a regex group
BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"


class FormatMismatch(Exception):
    """The file is in this format but cannot fit this model; the message says why and what to build instead."""


@dataclass(frozen=True)
class KeyPlan:
    """How a file's state dict maps onto model keys (found where ``source`` says: ``state_dict``, ``net``, top level)."""

    source: str
    state: dict[str, Any]
    renamed: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)
    unmapped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def coverage(self) -> float:
        """Share of the file's tensors this format knows (mapped or deliberately skipped)."""
        return (len(self.renamed) + len(self.skipped)) / len(self.state) if self.state else 0.0


@dataclass(frozen=True)
class Adapted:
    """Tensors ready to load under model keys, and what was resized, skipped or left at init (model keys, reasons)."""

    state: dict[str, Any]
    resized: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    left_at_init: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def tensor_dict(obj: Any) -> bool:
    """True for a non-empty dict of str -> tensor (a state dict)."""
    import torch

    return (isinstance(obj, dict) and bool(obj)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def shape(t: Any) -> str:
    return "x".join(map(str, tuple(t.shape))) or "scalar"


class WeightsFormat:
    """One checkpoint layout. Subclasses set the class attributes and :attr:`rules` (or override the methods)."""

    name: ClassVar[str]
    #: the model family it fills (``ModelSpec.family``); "" for any model
    family: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: option -> allowed values, the first being the default (``--weights-format NAME:option=value``)
    options: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: keys of a checkpoint dict that may hold the state dict, in order of preference ("" is the top level)
    wrappers: ClassVar[tuple[str, ...]] = ("", "state_dict")
    #: prefixes dropped from every key that has them (``module.`` from DataParallel)
    prefixes: ClassVar[tuple[str, ...]] = ("module.",)
    #: (regex over the whole key after prefixes, replacement) pairs, the first match wins
    rules: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: (regex, reason) pairs for keys that are known and deliberately not loaded
    skips: ClassVar[tuple[tuple[str, str], ...]] = ()

    def find_state(self, obj: Any) -> tuple[str, dict[str, Any]] | None:
        """``(wrapper, state dict)`` for the first wrapper that holds one, or None."""
        for w in self.wrappers:
            inner = obj if w == "" else obj.get(w) if isinstance(obj, dict) else None
            if tensor_dict(inner):
                return w or "top level", inner
        return None

    def strip(self, key: str) -> str:
        for p in self.prefixes:
            if key.startswith(p):
                key = key[len(p):]
        return key

    def rename(self, key: str) -> str | None:
        """The model key for a file key (prefixes already stripped), or None when the format does not know it."""
        for pattern, repl in self.rules:
            if re.fullmatch(pattern, key):
                return re.sub(f"^(?:{pattern})$", repl, key)
        return None

    def skip_reason(self, key: str) -> str | None:
        return next((reason for pattern, reason in self.skips if re.fullmatch(pattern, key)), None)

    def plan_keys(self, obj: Any, model_keys: frozenset[str]) -> KeyPlan | None:
        """Map the file's keys (``model_keys`` is for formats whose names are the model's own), or None if no state dict."""
        found = self.find_state(obj)
        if found is None:
            return None
        source, state = found
        renamed, skipped, unmapped = {}, {}, []
        for key in state:
            bare = self.strip(key)
            reason = self.skip_reason(bare)
            target = None if reason else self.rename(bare)
            if reason:
                skipped[key] = reason
            elif target is not None:
                renamed[key] = target
            else:
                unmapped.append(key)
        return KeyPlan(source, state, renamed, skipped, tuple(unmapped), self.wrapper_notes(obj, source))

    def wrapper_notes(self, obj: Any, source: str) -> tuple[str, ...]:
        """Notes about what else the file held (e.g. EMA weights not used)."""
        return ()

    def adapt(self, plan: KeyPlan, model: torch.nn.Module, options: dict[str, str]) -> Adapted:
        """The renamed tensors for ``model``; override to resize, inflate or leave parts at init."""
        return Adapted({plan.renamed[k]: v for k, v in plan.state.items() if k in plan.renamed})
