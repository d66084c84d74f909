"""A timm ViT image checkpoint as the spatial encoder of edgest's ViViT (Factorised Encoder).

ViViT initialises its spatial transformer from an image ViT (Arnab et al. 2021, Sec. 3.4); the
temporal transformer, the frame adapter (SFA-ViViT) and the classifier have no image
counterpart and are left at their initialisation. timm's names (``timm/models/vision_transformer.py``:
``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.i.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``,
``norm``, ``head``) map to ``spatial.*`` one-to-one, except:

* the 2D patch embedding (D, C, p, p) is inflated to the tubelet (D, C*t, p, p), channel c*t + dt
  holding the 3D kernel's frame dt (:class:`edgest_models.vivit.TubeletEmbed`). Option ``inflate``:
  ``central`` (default; the paper's "central frame initialisation": the 2D filter on frame t//2,
  zeros elsewhere) or ``average`` (I3D-style filter inflation: the 2D filter / t on every frame);
* position embeddings of another grid are resized as timm resizes them (bicubic, antialias;
  the class token's position kept);
* the image classifier (``head``) is skipped.

``.pth`` files (bare, or wrapped in ``model`` / ``state_dict``) and ``.safetensors`` files
(timm's Hugging Face layout) both load.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from edgest.weights.base import Adapted, FormatMismatch, KeyPlan, WeightsFormat, shape

if TYPE_CHECKING:
    import torch

_AT_INIT = {"temporal.": "temporal encoder: no image counterpart", "head.": "video classifier: no image counterpart",
            "adapter.": "frame adapter: no image counterpart"}


class TimmViT(WeightsFormat):
    name: ClassVar[str] = "timm-vit"
    family: ClassVar[str] = "vivit"
    summary: ClassVar[str] = "timm ViT image checkpoint (.pth or .safetensors) as ViViT's spatial encoder"
    options: ClassVar[dict[str, tuple[str, ...]]] = {"inflate": ("central", "average")}
    wrappers: ClassVar[tuple[str, ...]] = ("", "model", "state_dict", "model_ema", "state_dict_ema")
    rules: ClassVar[tuple[tuple[str, str], ...]] = (
        (r"(cls_token|pos_embed)", r"spatial.\1"),
        (r"patch_embed\.proj\.(weight|bias)", r"spatial.patch_embed.proj.\1"),
        (r"blocks\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)", r"spatial.blocks.\1.\2.\3"),
        (r"norm\.(weight|bias)", r"spatial.norm.\1"),
    )
    skips: ClassVar[tuple[tuple[str, str], ...]] = (
        (r"head\.(weight|bias)", "image classifier: the video head is left at init"),
    )

    def adapt(self, plan: KeyPlan, model: torch.nn.Module, options: dict[str, str]) -> Adapted:
        own = model.state_dict()
        state = {plan.renamed[k]: v for k, v in plan.state.items() if k in plan.renamed}
        how = options.get("inflate", self.options["inflate"][0])
        resized = {}
        key = "spatial.patch_embed.proj.weight"
        if key in state and key in own and state[key].shape != own[key].shape:
            state[key], resized[key] = _inflate(state[key], own[key], how)
        key = "spatial.pos_embed"
        if key in state and key in own and state[key].shape != own[key].shape:
            state[key], resized[key] = _resize_positions(state[key], own[key])
        left = {k: why for k in own for prefix, why in _AT_INIT.items() if k.startswith(prefix)}
        t = own["spatial.patch_embed.proj.weight"].shape[1] // 3 if "spatial.patch_embed.proj.weight" in own else 1
        which = f"central frame: frame {t // 2} of {t}" if how == "central" else f"averaged over {t} frames"
        notes = (f"spatial encoder from an image ViT; patch embedding inflated to {t}-frame tubelets ({which}); "
                 "temporal encoder and head left at init",)
        return Adapted(state, resized, {}, left, notes)


def _inflate(w2d: Any, own: Any, how: str) -> tuple[Any, str]:
    """(D, C, p, p) -> (D, C*t, p, p) with channel c*t + dt = frame dt of the 3D kernel."""
    import torch

    d, c = w2d.shape[:2]
    if w2d.dim() != 4 or own.dim() != 4 or own.shape[0] != d or own.shape[2:] != w2d.shape[2:] or own.shape[1] % c:
        raise FormatMismatch(f"the image ViT's patch embedding is {shape(w2d)} (width {d}, patch {w2d.shape[-1]}), the "
                             f"model's {shape(own)}; use a ViT with the model's width and patch size")
    t = own.shape[1] // c
    kernel = torch.zeros(d, c, t, *w2d.shape[2:], dtype=w2d.dtype)
    if how == "central":
        kernel[:, :, t // 2] = w2d
    else:
        kernel[:, :] = (w2d / t).unsqueeze(2)
    return kernel.reshape(own.shape), f"{shape(w2d)} -> {shape(own)} (inflated: {how})"


def _resize_positions(pos: Any, own: Any) -> tuple[Any, str]:
    """(1, 1 + g*g, D) -> (1, 1 + G*G, D): patch positions bicubic-resized (antialias), the CLS position kept."""
    import torch
    import torch.nn.functional as F

    n, m = pos.shape[1] - 1, own.shape[1] - 1
    g, big = math.isqrt(max(n, 0)), math.isqrt(max(m, 0))
    if pos.dim() != 3 or pos.shape[-1] != own.shape[-1] or g * g != n or big * big != m:
        raise FormatMismatch(f"the image ViT's position embedding is {shape(pos)}, the model's {shape(own)}; only square "
                             "grids with one class token and the same width can be resized")
    grid = pos[:, 1:].float().reshape(1, g, g, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(big, big), mode="bicubic", antialias=True).permute(0, 2, 3, 1).reshape(1, m, -1)
    out = torch.cat([pos[:, :1], grid.to(pos.dtype)], dim=1)
    return out, f"{shape(pos)} -> {shape(out)} (grid {g}x{g} -> {big}x{big}, bicubic)"
