"""Module paths through a quantizer's conv+BatchNorm folding, so that ``edgest debug`` compares like with like.

torchao's ``_fuse_conv_bn_`` (inside NNCF's Torch FX backend and PT2E's ``prepare_pt2e``) folds an eval-mode
BatchNorm into the conv before it and deletes the BN's node: the conv node computes conv∘BN from then on, but
still carries the conv's module path (``nn_module_stack``). ``edgest debug`` compares each module's output in the
artifact with eager PyTorch's by those paths, so it compared conv∘BN with the eager conv and named the first
folded conv the culprit, on an artifact that passed (squeezetime_tiny OpenVINO int8: 32.4 dB out, ``stem.0`` at
0.8 dB; Core ML int8 alike). A quantizer records :func:`bn_after_convs` before quantising and calls
:func:`relabel_folded_convs` on the result: a folded conv then carries its BN's path (its value is the BN's
output), and what else was inside the conv's module (its weight's and input's quantize nodes) the path around
it, so the conv is not compared. The OpenVINO and Core ML quantizers do.

Works on the ``GraphModule`` from ``ExportedProgram.module()``, before and after the quantizer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import torch

class FoldableBN(NamedTuple):
    """An eval-mode BatchNorm right after a conv (or transposed conv) that has no other user: the pair torchao folds."""

    bn: str
    conv_stack: dict[str, Any]
    bn_stack: dict[str, Any]


def bn_after_convs(gm: torch.fx.GraphModule) -> dict[str, FoldableBN]:
    """Conv node name → the BatchNorm after it that a torchao-based quantizer may fold (see the module doc)."""
    from edgest.quantize.prequant import folds_into, is_eval_batch_norm

    out = {}
    for node in gm.graph.nodes:
        if not is_eval_batch_norm(node):
            continue
        src = node.args[0]
        if folds_into(src) and len(src.users) == 1:
            conv_stack, bn_stack = src.meta.get("nn_module_stack"), node.meta.get("nn_module_stack")
            if conv_stack and bn_stack:
                out[src.name] = FoldableBN(node.name, dict(conv_stack), dict(bn_stack))
    return out


def relabel_folded_convs(gm: torch.fx.GraphModule, before: dict[str, FoldableBN]) -> int:
    """Give each conv of ``before`` whose BatchNorm is gone from ``gm`` the BN's module path, and the other nodes
    inside the conv's module the path around it; returns how many convs were relabelled."""
    nodes = {n.name: n for n in gm.graph.nodes}
    done = 0
    for conv_name, fold in before.items():
        conv = nodes.get(conv_name)
        if conv is None or fold.bn in nodes:
            continue
        inner = list(fold.conv_stack)[-1]  # the conv module's key: the innermost entry
        for node in gm.graph.nodes:
            stack = node.meta.get("nn_module_stack")
            if node is not conv and stack and list(stack)[-1] == inner and stack[inner] == fold.conv_stack[inner]:
                node.meta["nn_module_stack"] = {k: v for k, v in stack.items() if k != inner}
        conv.meta["nn_module_stack"] = dict(fold.bn_stack)
        done += 1
    return done
