"""LMUFormer's training-script checkpoints (zeyuliu1037/LMUFormer, ``src/traintest.py``) onto edgest's LMUFormer.

The script wraps the model in ``nn.DataParallel`` and saves ``model.state_dict()``
(``best_model.pth``, ``audio_model_wa.pth``): a bare state dict whose keys start with ``module.``.
Official module names (``src/lmu_rnn.py``, ``src/blocks/*.py``) against edgest's
(``edgest_models/lmuformer.py``):

==============================================  ===============================
official                                        edgest
==============================================  ===============================
patch_embed.conv_layers.i.0 (Tokenizer conv)    patch_embed.convs.i
patch_embed.conv_layers.i.3 (Tokenizer BN)      patch_embed.bns.i
patch_embed.proj_conv, proj_conv1..3 (Ms)       patch_embed.convs.0..3
patch_embed.proj_bn, proj_bn1..3 (Ms)           patch_embed.bns.0..3
block.j.*                                       blocks.j.*
block.j.attn.lmu.{A,B,H,fft_H}                  (not stored: recomputed)
==============================================  ===============================

Everything else keeps its name (``rpe_conv``, ``attn.lmu.W_u``/``W_h``/``bn_*``, ``attn.prev_bn``,
``attn.proj_conv``/``proj_bn``, ``mlp.fc{1,2}_{conv,bn}``, ``head_bn``, ``head``). The LMU's
state-space buffers are derived from memory size and theta; edgest recomputes them (same zero-order
hold) instead of loading them, and checks that the file's theta is the model's sequence length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from edgest.weights.base import BN, Adapted, FormatMismatch, KeyPlan, WeightsFormat

if TYPE_CHECKING:
    import torch

_BUFFERS = r"block\.(\d+)\.attn\.lmu\.(A|B|H|fft_H)"


class LMUFormerScript(WeightsFormat):
    name: ClassVar[str] = "lmuformer"
    family: ClassVar[str] = "lmuformer"
    summary: ClassVar[str] = "official LMUFormer training script (DataParallel state_dict, module. prefix)"
    wrappers: ClassVar[tuple[str, ...]] = ("", "state_dict", "model")
    rules: ClassVar[tuple[tuple[str, str], ...]] = (
        (r"patch_embed\.conv_layers\.(\d)\.0\.weight", r"patch_embed.convs.\1.weight"),
        (r"patch_embed\.conv_layers\.(\d)\.3\." + BN, r"patch_embed.bns.\1.\2"),
        (r"patch_embed\.proj_conv\.weight", r"patch_embed.convs.0.weight"),
        (r"patch_embed\.proj_conv([1-3])\.weight", r"patch_embed.convs.\1.weight"),
        (r"patch_embed\.proj_bn\." + BN, r"patch_embed.bns.0.\1"),
        (r"patch_embed\.proj_bn([1-3])\." + BN, r"patch_embed.bns.\1.\2"),
        (r"patch_embed\.rpe_conv\.weight", r"patch_embed.rpe_conv.weight"),
        (r"block\.(\d+)\.attn\.lmu\.(W_u|W_h)\.(weight|bias)", r"blocks.\1.attn.lmu.\2.\3"),
        (r"block\.(\d+)\.attn\.lmu\.(bn_u|bn_m|bn_h)\." + BN, r"blocks.\1.attn.lmu.\2.\3"),
        (r"block\.(\d+)\.attn\.(prev_bn|proj_bn)\." + BN, r"blocks.\1.attn.\2.\3"),
        (r"block\.(\d+)\.attn\.proj_conv\.(weight|bias)", r"blocks.\1.attn.proj_conv.\2"),
        (r"block\.(\d+)\.mlp\.(fc1_conv|fc2_conv)\.(weight|bias)", r"blocks.\1.mlp.\2.\3"),
        (r"block\.(\d+)\.mlp\.(fc1_bn|fc2_bn)\." + BN, r"blocks.\1.mlp.\2.\3"),
        (r"head_bn\." + BN, r"head_bn.\1"),
        (r"head\.(weight|bias)", r"head.\1"),
    )
    skips: ClassVar[tuple[tuple[str, str], ...]] = (
        (_BUFFERS, "LMU state-space buffer: edgest recomputes it from memory size and theta"),
    )

    def adapt(self, plan: KeyPlan, model: torch.nn.Module, options: dict[str, str]) -> Adapted:
        import re

        for key, t in plan.state.items():
            m = re.fullmatch(_BUFFERS, self.strip(key))
            if m is None or m.group(2) != "H" or t.dim() != 2:
                continue
            try:
                theta = model.get_submodule(f"blocks.{m.group(1)}.attn.lmu.memory").theta
            except AttributeError:
                continue  # no such block: the key check names the extra block's tensors
            if t.shape[1] != theta:
                raise FormatMismatch(f"the checkpoint's LMU was built for {t.shape[1]}-step sequences (theta), the model "
                                     f"for {theta}; build it with input shape 1x{t.shape[1]}xF")
        return super().adapt(plan, model, options)
