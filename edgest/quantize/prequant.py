"""Graph rewrites before a torchao-based quantizer, so that its conv+BN folding neither fails nor folds wrongly.

ExecuTorch's XNNPACK quantizer (``prepare_pt2e``) and NNCF's Torch FX backend (``nncf.quantize`` on a
``GraphModule``, used by the OpenVINO target) both fold each BatchNorm into the conv before it with torchao's
``_fuse_conv_bn_`` first. Two constructs break that on otherwise plain models (LMUFormer has both):

* a conv weight computed from constants rather than read from a parameter, e.g. a buffer
  sliced to the sequence length (``kernel[..., theta - n:]`` exports as ``alias``/``slice`` of
  the buffer). torchao's conv+BN folding then fails ("Expected get_attr node") and XNNPACK
  refuses a weight that is not a static tensor. :func:`fold_constant_weights` evaluates such
  weights once and stores the result as a constant.
* a BatchNorm that does not follow a conv (conv → ReLU → BN, linear → BN, BN on a residual
  stream), or follows a conv whose output is also used elsewhere (LMUFormer's spiking patch
  embedding: ``x + rpe_conv(LIF(BN(x)))`` with x a conv output). torchao's prepare_pt2e folds
  every BN into the conv before it without checking the conv's other users, which then read
  the BN's output instead of the conv's (the spiking LMUFormer came out at 5 dB even with
  nothing quantised). A BN that is not folded stays float, and
  XNNPACK's partitioner then rewrites it into a float depthwise conv whose input is the
  previous op's int8 output, which its conv lowering rejects ("Weight and Input should both
  be quantized"). :func:`batch_norm_as_depthwise_conv` turns each standalone eval-mode BN into
  the equivalent 1x1 depthwise conv first, which the quantizer then annotates like any conv:
  per-channel int8 weights of one element per channel are exact (each quantises to ±127), so
  the BN runs in int8 at no cost beyond the output rounding every int8 op has.

Both work on the ``GraphModule`` from ``ExportedProgram.module()`` (parameters as ``get_attr``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_PREFIX = "_edgest_const"


def _conv_or_linear(node: Any) -> bool:
    import torch

    aten = torch.ops.aten
    return node.op == "call_function" and node.target in (
        aten.conv1d.default, aten.conv2d.default, aten.conv3d.default, aten.convolution.default,
        aten.conv_transpose1d.default, aten.conv_transpose2d.input, aten.linear.default,
    )


def _constant_leaves(node: Any) -> bool:
    """True if ``node`` is computed from ``get_attr`` nodes only (no graph input, no side effects)."""
    if node.op == "get_attr":
        return True
    if node.op != "call_function" or node.is_impure():
        return False
    return all(_constant_leaves(a) for a in node.all_input_nodes) and bool(node.all_input_nodes)


def _evaluate(gm: Any, node: Any) -> Any:
    import torch

    if node.op == "get_attr":
        return _attr(gm, node.target)
    args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: _evaluate(gm, n))
    with torch.no_grad():
        return node.target(*args, **kwargs)


def _attr(gm: Any, target: str) -> Any:
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _add_constant(gm: Any, value: torch.Tensor, before: Any, like: Any) -> Any:
    """A new ``get_attr`` node (inserted before ``before``) holding ``value`` as a constant parameter of ``gm``."""
    import torch
    from torch._guards import detect_fake_mode

    i = 0
    while hasattr(gm, f"{_PREFIX}{i}"):
        i += 1
    name = f"{_PREFIX}{i}"
    # a parameter, not a buffer: torchao's conv+BN folding re-registers the conv weight as a parameter
    gm.register_parameter(name, torch.nn.Parameter(value.detach().contiguous(), requires_grad=False))
    with gm.graph.inserting_before(before):
        node = gm.graph.get_attr(name)
    fake_mode = detect_fake_mode([like.meta.get("val")])
    if fake_mode is not None:
        node.meta["val"] = fake_mode.from_tensor(_attr(gm, name), static_shapes=True)
    return node


def fold_constant_weights(gm: torch.fx.GraphModule) -> int:
    """Replace conv/linear weights and biases computed from constants by the computed constant; returns how many."""
    count = 0
    for node in list(gm.graph.nodes):
        if not _conv_or_linear(node):
            continue
        for i in (1, 2):
            arg = node.args[i] if len(node.args) > i else None
            if arg is None or not hasattr(arg, "op") or arg.op == "get_attr" or not _constant_leaves(arg):
                continue
            new = _add_constant(gm, _evaluate(gm, arg), node, arg)
            node.replace_input_with(arg, new)
            count += 1
    if count:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return count


def folds_into(node: Any) -> bool:
    """Whether torchao's conv+BN folding folds a BatchNorm that reads ``node`` into it (a conv or transposed conv):
    torchao's own test, imported quietly (this may be the process's first torchao import)."""
    from edgest.quiet import quiet_loggers

    with quiet_loggers():
        from torchao.quantization.pt2e.utils import _is_conv_or_conv_transpose_node

    return _is_conv_or_conv_transpose_node(node)


def is_eval_batch_norm(node: Any) -> bool:
    """Whether ``node`` is an eval-mode BatchNorm1d/2d on a 3-D or 4-D input with its parameters as attributes."""
    import torch

    if node.op != "call_function" or node.target is not torch.ops.aten.batch_norm.default:
        return False
    x, w, b, mean, var = node.args[:5]
    training = node.args[5] if len(node.args) > 5 else node.kwargs.get("training", False)
    rank = getattr(x.meta.get("val"), "ndim", 0)
    params = [a for a in (w, b, mean, var) if a is not None]
    return not training and mean is not None and rank in (3, 4) and all(getattr(a, "op", "") == "get_attr" for a in params)


def batch_norm_as_depthwise_conv(gm: torch.fx.GraphModule, only_after_shared_convs: bool = False) -> int:
    """Rewrite each eval-mode BatchNorm1d/2d that prepare_pt2e would not fold correctly as a 1x1 depthwise conv.

    That is every BN except one right after a conv that has no other user; with ``only_after_shared_convs``
    only a BN right after a conv that has other users (the one torchao's folding gets wrong; a quantizer that
    keeps other BNs float, as NNCF does, needs no more). Returns how many.
    """
    import torch

    aten = torch.ops.aten
    count = 0
    for node in list(gm.graph.nodes):
        if not is_eval_batch_norm(node):
            continue
        src = node.args[0]
        after_conv = folds_into(src)
        if (after_conv and len(src.users) == 1) or (only_after_shared_convs and not after_conv):
            continue  # folded into the conv correctly, or (only_after_shared_convs) no conv to fold it into
        x, w, b, mean, var = node.args[:5]
        eps = node.args[7] if len(node.args) > 7 else node.kwargs.get("eps", 1e-5)
        mean_t = _attr(gm, mean.target).double()
        gamma = _attr(gm, w.target).double() if w is not None else torch.ones_like(mean_t)
        beta = _attr(gm, b.target).double() if b is not None else torch.zeros_like(mean_t)
        scale = gamma / torch.sqrt(_attr(gm, var.target).double() + eps)
        shift = beta - mean_t * scale
        rank = x.meta["val"].ndim
        dtype = x.meta["val"].dtype
        weight = scale.to(dtype).reshape(-1, *([1] * (rank - 1)))  # (C, 1, 1[, 1])
        w_node = _add_constant(gm, weight, node, x)
        b_node = _add_constant(gm, shift.to(dtype), node, x)
        conv = aten.conv1d.default if rank == 3 else aten.conv2d.default
        spatial = rank - 2
        with gm.graph.inserting_before(node):
            new = gm.graph.call_function(conv, (x, w_node, b_node, [1] * spatial, [0] * spatial, [1] * spatial, weight.shape[0]))
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        count += 1
    if count:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return count


def before_torchao_folding(gm: torch.fx.GraphModule, every_batch_norm: bool = False) -> dict[str, int]:
    """Both rewrites on ``gm``, in place, for a quantizer whose first step is torchao's conv+BN folding:
    :func:`fold_constant_weights`, then :func:`batch_norm_as_depthwise_conv` for the BNs torchao would fold wrongly
    (``every_batch_norm``: every BN it would not fold, as XNNPACK needs). How many of each, under the keys the
    quantizers' details use."""
    return {"constant_weights_folded": fold_constant_weights(gm),
            "batch_norms_as_depthwise_conv": batch_norm_as_depthwise_conv(gm, only_after_shared_convs=not every_batch_norm)}
