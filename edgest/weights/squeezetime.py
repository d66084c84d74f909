"""SqueezeTime's official checkpoints (xinghaochen/SqueezeTime, mmaction2/mmengine) onto edgest's SqueezeTime.

The releases are mmengine checkpoints, ``{"meta", "state_dict", ...}`` (sometimes with
``message_hub``, ``optimizer``, ``param_schedulers``), whose ``state_dict`` holds the recognizer:
``backbone.net.*`` (the official ``ResNet`` inside the ``SqueezeTime`` backbone) and
``cls_head.fc_cls.*`` (``I2DHead``). The ImageNet-1k pretrain is loaded by the official code into
the bare ``ResNet`` (``load_ckpts``: ``state_dict`` or ``model`` wrapper, keys without a prefix),
so it carries the backbone only: edgest loads it and leaves the head at its initialisation.

Official module names (``mmaction/models/backbones/SqueezeTime.py``) against edgest's
(``edgest_models/squeezetime.py``), per bottleneck ``layerS.B``:

=======================================  ==========================
official                                 edgest
=======================================  ==========================
conv1 / bn1 (stem)                       stem.0 / stem.1
conv2.param_conv.{1,2,4}                 ctl.gate.{1,2,4}
conv2.temporal_conv                      ctl.temporal
conv2.spatial_conv.short_conv            ctl.short
conv2.spatial_conv.glo_conv.{0,1}        ctl.glo_in.{0,1}
conv2.spatial_conv.glo_conv.{3,4,6}      ctl.glo_out.{0,1,3}
conv2.spatial_conv.pos_embed             ctl.pos_embed
shortcut_conv.{0,1}                      shortcut.{0,1}
cls_head.fc_cls                          fc
=======================================  ==========================

``conv1``, ``bn1``..``bn3``, ``conv3`` and ``downsample`` keep their names. Position embeddings
of another size are resized the way the model resamples them at run time (bilinear,
``align_corners=True``), so the network computes what it computed at that feature size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from edgest.weights.base import BN, Adapted, FormatMismatch, KeyPlan, WeightsFormat, shape

if TYPE_CHECKING:
    import torch

_NET = r"(?:backbone\.)?(?:net\.)?"
_BLOCK = _NET + r"layer(\d)\.(\d+)\."
_SPATIAL = _BLOCK + r"conv2\.spatial_conv\."


class SqueezeTimeMMAction(WeightsFormat):
    name: ClassVar[str] = "squeezetime-mmaction"
    family: ClassVar[str] = "squeezetime"
    summary: ClassVar[str] = ("official SqueezeTime release (mmaction2/mmengine: K400/K600/HMDB51 fine-tunes; the "
                              "ImageNet-1k pretrain loads the backbone only)")
    wrappers: ClassVar[tuple[str, ...]] = ("", "state_dict", "model")
    rules: ClassVar[tuple[tuple[str, str], ...]] = (
        (_NET + r"conv1\.weight", r"stem.0.weight"),
        (_NET + r"bn1\." + BN, r"stem.1.\1"),
        (_BLOCK + r"(conv1|conv3)\.weight", r"layer\1.\2.\3.weight"),
        (_BLOCK + r"(bn1|bn2|bn3)\." + BN, r"layer\1.\2.\3.\4"),
        (_BLOCK + r"downsample\.([01])\." + BN, r"layer\1.\2.downsample.\3.\4"),
        (_BLOCK + r"shortcut_conv\.([01])\." + BN, r"layer\1.\2.shortcut.\3.\4"),
        (_BLOCK + r"conv2\.param_conv\.([124])\." + BN, r"layer\1.\2.ctl.gate.\3.\4"),
        (_BLOCK + r"conv2\.temporal_conv\.(weight|bias)", r"layer\1.\2.ctl.temporal.\3"),
        (_SPATIAL + r"short_conv\.(weight|bias)", r"layer\1.\2.ctl.short.\3"),
        (_SPATIAL + r"glo_conv\.([01])\." + BN, r"layer\1.\2.ctl.glo_in.\3.\4"),
        (_SPATIAL + r"glo_conv\.3\.(weight|bias)", r"layer\1.\2.ctl.glo_out.0.\3"),
        (_SPATIAL + r"glo_conv\.4\." + BN, r"layer\1.\2.ctl.glo_out.1.\3"),
        (_SPATIAL + r"glo_conv\.6\.(weight|bias)", r"layer\1.\2.ctl.glo_out.3.\3"),
        (_SPATIAL + r"pos_embed", r"layer\1.\2.ctl.pos_embed"),
        (r"cls_head\.fc_cls\.(weight|bias)", r"fc.\1"),
    )
    skips: ClassVar[tuple[tuple[str, str], ...]] = (
        (r"(?:net\.)?(?:fc|head)\.(weight|bias)", "classifier of the ImageNet-1k pretrain, not a video head"),
    )

    def adapt(self, plan: KeyPlan, model: torch.nn.Module, options: dict[str, str]) -> Adapted:
        own = model.state_dict()
        state = {plan.renamed[k]: v for k, v in plan.state.items() if k in plan.renamed}
        backbone_only = not any(k.startswith("fc.") for k in state)
        resized = _resize_pos_embeds(state, own)
        skipped: dict[str, str] = {}
        stem = state.get("stem.0.weight")
        if stem is not None and "stem.0.weight" in own and stem.shape != own["stem.0.weight"].shape:
            frames, model_frames = stem.shape[1] // 3, own["stem.0.weight"].shape[1] // 3
            if not backbone_only:
                raise FormatMismatch(f"the checkpoint's stem takes {frames} frames ({stem.shape[1]} channels), the model "
                                     f"{model_frames}; build it with --model-option num_frames={frames} (or "
                                     f"--input-shape 1x3x{frames}xHxW)")
            del state["stem.0.weight"]
            skipped["stem.0.weight"] = (f"stem {shape(stem)} vs model {shape(own['stem.0.weight'])}: left at init, as the "
                                        "official loader skips shape mismatches of the pretrain")
        head = state.get("fc.weight")
        if head is not None and "fc.weight" in own and head.shape[0] != own["fc.weight"].shape[0]:
            raise FormatMismatch(f"the checkpoint's head has {head.shape[0]} classes, the model {own['fc.weight'].shape[0]}; "
                                 f"build it with --model-option num_classes={head.shape[0]}")
        left = {k: "its shape differs (see skipped): left at init" for k in skipped}
        notes = []
        if backbone_only:
            left |= {k: "backbone-only checkpoint (no video head): left at init" for k in own if k.startswith("fc.")}
            notes.append("backbone only (no cls_head in the file): the head is left at its initialisation")
        return Adapted(state, resized, skipped, left, tuple(notes))


def _resize_pos_embeds(state: dict[str, Any], own: dict[str, Any]) -> dict[str, str]:
    """Resize CTL position embeddings to the model's size in place (bilinear, align_corners=True, as the model does)."""
    import torch.nn.functional as F

    resized = {}
    for key, t in list(state.items()):
        if not key.endswith("ctl.pos_embed") or key not in own or t.shape == own[key].shape:
            continue
        target = own[key].shape
        if t.dim() != 4 or t.shape[:2] != target[:2]:
            continue  # a different channel count: the shape check names it
        state[key] = F.interpolate(t.float(), size=tuple(target[-2:]), mode="bilinear", align_corners=True).to(t.dtype)
        resized[key] = f"{shape(t)} -> {shape(state[key])} (bilinear, align_corners=True, as the model resamples it)"
    return resized
