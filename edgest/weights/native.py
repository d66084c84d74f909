"""edgest's own weights: ``torch.save(model.state_dict())`` (or ``{"state_dict": ...}``), or a safetensors file.

The keys are the model's own names, so the format knows exactly the keys the model has; any
other key is unknown, and the load stops with the missing, unexpected and mismatched keys.
This is the format of ``edgest train``, of user models, and the fallback when a file fits no
release format.
"""

from __future__ import annotations

from typing import Any, ClassVar

from edgest.weights.base import KeyPlan, WeightsFormat


class Native(WeightsFormat):
    name: ClassVar[str] = "edgest"
    summary: ClassVar[str] = "edgest's own state_dict (torch.save(model.state_dict()) or safetensors), any model"
    prefixes: ClassVar[tuple[str, ...]] = ()

    def plan_keys(self, obj: Any, model_keys: frozenset[str]) -> KeyPlan | None:
        found = self.find_state(obj)
        if found is None:
            return None
        source, state = found
        renamed = {k: k for k in state if k in model_keys}
        return KeyPlan(source, state, renamed, {}, tuple(k for k in state if k not in model_keys))
