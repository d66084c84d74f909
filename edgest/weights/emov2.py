"""EMOv2's released checkpoints (zhangzjn/EMOv2) onto edgest's EMOv2 (image and per-frame video models).

edgest's EMOv2 keeps the official module names (``stage0``..``stage4``, ``eops.0``,
``conv_local``, ``proj``, ``ls.gamma``, ``norm``, ``head``), so the keys need no renaming; what
varies is the wrapper. The official trainer saves ``{"net", "net_E", "optimizer", ...}`` (``net_E``:
the EMA copy) and the best weights bare (``net.pth``); timm-style releases use ``model`` /
``model_ema`` / ``state_dict``, and DataParallel adds ``module.``. The plain weights are preferred
over EMA ones, as the official test script does by default (``ema=False``); the record says
which were used. An ImageNet head on a model with another class count (the video models'
Kinetics head) is left at its initialisation, as the official fine-tuning loader does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from edgest.weights.base import BN, Adapted, KeyPlan, WeightsFormat, shape

if TYPE_CHECKING:
    import torch

_EMA = ("net_E", "model_ema", "state_dict_ema")
_CNA = r"(conv\.(weight|bias)|norm\.(norm\.)?" + BN + ")"  # ConvNormAct: conv, BatchNorm or LayerNorm2d


class EMOv2Release(WeightsFormat):
    name: ClassVar[str] = "emov2"
    family: ClassVar[str] = "emov2"
    summary: ClassVar[str] = "official EMOv2 release (bare, net/net_E, model/model_ema or state_dict; module. prefix)"
    wrappers: ClassVar[tuple[str, ...]] = ("", "net", "model", "state_dict", *_EMA)
    rules: ClassVar[tuple[tuple[str, str], ...]] = (
        (r"(stage0\.[0-2]\.)" + _CNA, r"\g<0>"),
        (r"stage[1-4]\.\d+\.norm\.(norm\.)?" + BN, r"\g<0>"),
        (r"stage[1-4]\.\d+\.eops\.0\.(net|qk|v)\." + _CNA, r"\g<0>"),
        (r"stage[1-4]\.\d+\.(conv_local|proj)\." + _CNA, r"\g<0>"),
        (r"stage[1-4]\.\d+\.ls\.gamma", r"\g<0>"),
        (r"norm\.(norm\.)?" + BN, r"\g<0>"),
        (r"head\.(weight|bias)", r"\g<0>"),
    )

    def wrapper_notes(self, obj: Any, source: str) -> tuple[str, ...]:
        if source in _EMA:
            return (f"EMA weights ({source}) used: the file has no plain ones",)
        unused = [w for w in _EMA if isinstance(obj, dict) and obj.get(w) is not None]
        return (f"EMA weights ({', '.join(unused)}) in the file, not used: the plain weights ({source}) are",) if unused else ()

    def adapt(self, plan: KeyPlan, model: torch.nn.Module, options: dict[str, str]) -> Adapted:
        own = model.state_dict()
        state = {plan.renamed[k]: v for k, v in plan.state.items() if k in plan.renamed}
        head = state.get("head.weight")
        if head is None or "head.weight" not in own or head.shape[0] == own["head.weight"].shape[0]:
            return Adapted(state)
        skipped = {k: f"head {shape(state.pop(k))} vs model {shape(own[k])}" for k in ("head.weight", "head.bias") if k in state}
        left = {k: f"the checkpoint's head has {head.shape[0]} classes, the model {own['head.weight'].shape[0]}: left at init"
                for k in own if k.startswith("head.")}
        return Adapted(state, {}, skipped, left, (f"backbone loaded; the {head.shape[0]}-class head is not this model's "
                                                  f"{own['head.weight'].shape[0]}-class one and is left at init",))
