"""Rewrites that keep the maths and move ops into the XNNPACK delegate (applied before lowering).

XNNPACK has no layer norm, averages only 4-D tensors over H, W (global average pooling), takes
batched matmuls only as 3-D ``bmm`` and has no ``select``/``squeeze``/``expand``. Left as they
are, these ops run on ExecuTorch's portable kernels, one graph break each. Rewritten here:

* ``layer_norm`` over the last dim → mean and variance as 4-D global average pooling,
  ``rsqrt``, mul, add (all delegated);
* ``mean`` over any dims → permute + reshape to (1, P, R, 1) + global average pooling + reshape;
* ``matmul`` of two N-D tensors with the same batch dims → reshape to 3-D ``bmm`` (no ``expand``);
* ``select`` / ``unbind`` / ``split`` → ``slice`` (+ reshape), ``squeeze`` / ``unsqueeze`` → reshape
  (no ``select_copy``/``split_with_sizes_copy``/``squeeze_copy``/``unsqueeze_copy``);
* ``scaled_dot_product_attention`` without a mask → explicit ``bmm`` + plain ``softmax``:
  without a mask no row can be fully masked, so ExecuTorch's ``_safe_softmax`` guard
  (eq/any/where/logical_not/full_like, all portable) computes the same as ``softmax``;
* ``expand`` of a parameter (a CLS token) → folded into a constant (fp32 programs only).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def _norm_dims(dims: Any, rank: int) -> list[int]:
    dims = [dims] if isinstance(dims, int) else list(range(rank) if dims is None or len(dims) == 0 else dims)
    return sorted(d % rank for d in dims)


def mean_as_pooling(x: Any, dims: Any, keepdim: bool = False) -> Any:
    """``x.mean(dims, keepdim)`` as a 4-D (1, P, R, 1) mean over dims 2, 3 (XNNPACK global average pooling)."""
    rank = x.dim()
    red = _norm_dims(dims, rank)
    keep = [d for d in range(rank) if d not in red]
    xp = x.permute(*keep, *red) if keep + red != list(range(rank)) else x
    p = math.prod(x.shape[d] for d in keep)
    r = math.prod(x.shape[d] for d in red)
    m = xp.reshape(1, p, r, 1).mean(dim=(2, 3), keepdim=True)
    shape = [1 if d in red else x.shape[d] for d in range(rank)] if keepdim else [x.shape[d] for d in keep]
    return m.reshape(shape)


def layer_norm_delegated(x: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Any:
    """Layer norm over the last ``len(normalized_shape)`` dims from pooling, ``rsqrt``, mul and add."""
    import torch

    dims = list(range(x.dim() - len(normalized_shape), x.dim()))
    mu = mean_as_pooling(x, dims, keepdim=True)
    xc = x - mu
    y = xc * torch.rsqrt(mean_as_pooling(xc * xc, dims, keepdim=True) + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def matmul_as_bmm(a: Any, b: Any) -> Any:
    """``a @ b`` for N-D operands (N ≥ 3) with equal batch dims, as one 3-D ``bmm``."""
    import torch

    batch = a.shape[:-2]
    out = torch.bmm(a.reshape(-1, a.shape[-2], a.shape[-1]), b.reshape(-1, b.shape[-2], b.shape[-1]))
    return out.reshape(*batch, a.shape[-2], b.shape[-1])


def _slice_out(x: Any, dim: int, i: int) -> Any:
    shape = [s for d, s in enumerate(x.shape) if d != dim]
    return x.narrow(dim, i, 1).reshape(shape)


def sdpa_explicit(q: Any, k: Any, v: Any, scale: float | None = None) -> Any:
    """Unmasked attention as ``softmax(q k^T * scale) v`` with 3-D ``bmm``."""
    s = (1.0 / math.sqrt(q.shape[-1])) if scale is None else scale
    attn = matmul_as_bmm(q * s, k.transpose(-2, -1)).softmax(dim=-1)
    return matmul_as_bmm(attn, v)


def rewrite_for_xnnpack(program: torch.export.ExportedProgram) -> tuple[torch.export.ExportedProgram, dict[str, int]]:
    """Apply the rewrites above; returns the program and how many ops of each kind were rewritten."""
    import torch

    aten = torch.ops.aten
    def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
        return layer_norm_delegated(x, normalized_shape, weight, bias, eps)

    def mean_dim(x, dim, keepdim=False, dtype=None):
        red = _norm_dims(dim, x.dim())
        if dtype is not None or not x.is_floating_point() or (x.dim() == 4 and red == [2, 3] and keepdim):
            return NotImplemented  # already global average pooling, or not a float mean
        return mean_as_pooling(x, dim, keepdim)

    def matmul(a, b):
        if a.dim() < 3 or a.dim() != b.dim() or a.shape[:-2] != b.shape[:-2]:
            return NotImplemented  # broadcasting matmul: leave it
        return matmul_as_bmm(a, b)

    def select(x, dim, index):
        dim = dim % x.dim()
        return _slice_out(x, dim, index % x.shape[dim])

    def unbind(x, dim=0):
        dim = dim % x.dim()
        return [_slice_out(x, dim, i) for i in range(x.shape[dim])]

    def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if attn_mask is not None or is_causal or dropout_p or enable_gqa or q.dim() != k.dim() or q.shape[:-2] != k.shape[:-2]:
            return NotImplemented  # a mask may fully mask a row: keep the safe softmax
        return sdpa_explicit(q, k, v, scale)

    def split(x, sizes, dim=0):
        dim = dim % x.dim()
        if isinstance(sizes, int):
            sizes = [min(sizes, x.shape[dim] - i) for i in range(0, x.shape[dim], sizes)]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return [x.narrow(dim, s, n) for s, n in zip(starts, sizes)]

    def squeeze(x, dim=None):
        dims = _norm_dims(dim, x.dim()) if dim is not None else range(x.dim())
        return x.reshape([s for d, s in enumerate(x.shape) if not (d in dims and s == 1)])

    def unsqueeze(x, dim):
        shape = list(x.shape)
        shape.insert(dim % (x.dim() + 1), 1)
        return x.reshape(shape)

    table = {
        aten.layer_norm.default: layer_norm,
        aten.mean.dim: mean_dim,
        aten.matmul.default: matmul,
        aten.select.int: select,
        aten.unbind.int: unbind,
        aten.scaled_dot_product_attention.default: sdpa,
        aten.split.Tensor: split,
        aten.split_with_sizes.default: split,
        aten.squeeze.dim: squeeze,
        aten.squeeze.dims: squeeze,
        aten.squeeze.default: squeeze,
        aten.unsqueeze.default: unsqueeze,
    }
    before = _op_counts(program)
    if not set(before) & ({op_label(op) for op in table} | {"expand"}):
        return program, {}
    program = program.run_decompositions({op: fn for op, fn in table.items() if op_label(op) in before})
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    if not any("quantized_decomposed" in str(n.target) for n in program.graph.nodes):
        # parameter expands (CLS tokens) become constants; not on an int8 program, where it would
        # also fold each weight's quantize/dequantize pair back into an fp32 weight
        program = constant_prop_pass(program)
    after = _op_counts(program)
    return program, {k: n - after.get(k, 0) for k, n in sorted(before.items()) if n > after.get(k, 0)}


def op_label(target: Any) -> str:
    """``aten.layer_norm.default`` → ``layer_norm``."""
    return str(target).removeprefix("aten.").split(".")[0]


_REWRITTEN = {"layer_norm", "mean", "matmul", "select", "unbind", "scaled_dot_product_attention", "expand", "split",
              "split_with_sizes", "squeeze", "unsqueeze"}


def _op_counts(program: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in program.graph.nodes:
        if n.op == "call_function" and op_label(n.target) in _REWRITTEN and not _is_pooling(n):
            out[op_label(n.target)] = out.get(op_label(n.target), 0) + 1
    return out


def _is_pooling(node: Any) -> bool:
    """A ``mean`` XNNPACK already takes: 4-D, over dims 2 and 3, keepdim."""
    if op_label(node.target) != "mean" or len(node.args) < 3 or not node.args[2]:
        return False
    val = node.args[0].meta.get("val")
    return getattr(val, "ndim", 0) == 4 and _norm_dims(node.args[1], 4) == [2, 3]
