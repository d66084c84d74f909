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
* ``adaptive_avg_pool2d`` to an output size that divides the input → ``avg_pool2d`` with
  kernel = stride = input / output (the same windows; XNNPACK takes it, not the adaptive op);
* ``expand`` of a parameter (a CLS token) → folded into a constant;
* spiking-neuron maths (LIF): ``add``/``sub`` with ``alpha`` → mul + add; ``threshold`` and a
  comparison with a scalar cast to float (a Heaviside step) → ``ceil``/``floor``, ``clamp``
  and mul; ``zeros_like``/``full_like`` of a small tensor → a constant. Exact for finite
  inputs: the sign of ``x - c`` is exact in floating point (it is 0 only when x == c), so
  ``clamp(floor(x - c) + 1, 0, 1)`` is 1 exactly when x >= c and 0 otherwise, and a multiply
  by such a 0/1 step is exact. (The ATen ops become ``le``/``where``/``scalar_tensor``/
  ``_to_copy``/``full_like`` otherwise, all on portable kernels.)
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


#: largest ``zeros_like``/``full_like`` folded into a constant (elements): a LIF's initial membrane
#: is one time step; a large one would make the .pte grow by its size
MAX_FOLDED_FULL = 1 << 16


def step(d: Any, strict: bool) -> Any:
    """The Heaviside step of ``d`` as 0/1 floats: ``[d > 0]`` (strict) or ``[d >= 0]``, from XNNPACK ops only."""
    return (d.ceil() if strict else d.floor() + 1.0).clamp(0.0, 1.0)


def threshold_delegated(x: Any, threshold: float, value: float) -> Any:
    """``F.threshold(x, threshold, value)`` (x where x > threshold, else value) as ``x * s + value * (1 - s)``."""
    s = step(x - threshold, strict=True)
    return x * s if value == 0 else x * s + value * (1.0 - s)


#: comparison op → (step is strict, compare x - c (True) or c - x (False))
_COMPARISONS = {"gt": (True, True), "ge": (False, True), "lt": (True, False), "le": (False, False)}


def compare_as_step(x: Any, op: str, c: float) -> Any:
    """``(x <op> c).float()`` for op in gt/ge/lt/le, as a :func:`step`."""
    strict, forward = _COMPARISONS[op]
    return step(x - c if forward else c - x, strict)


def _rewrite_float_compares(program: Any) -> int:
    """In place: ``_to_copy(x <op> scalar, float)`` → :func:`compare_as_step` written as ATen ops; returns how many."""
    import torch
    from torch._guards import detect_fake_mode

    aten = torch.ops.aten
    graph, count = program.graph_module.graph, 0
    for node in list(graph.nodes):
        cmp = node.args[0] if node.op == "call_function" and node.target is aten._to_copy.default and node.args else None
        if cmp is None or getattr(cmp, "op", "") != "call_function" or op_label(cmp.target) not in _COMPARISONS:
            continue
        dtype = node.kwargs.get("dtype")
        x, c = cmp.args[0], cmp.args[1]
        xval, val = x.meta.get("val"), node.meta.get("val")
        if (str(cmp.target).split(".")[-1] != "Scalar" or set(node.kwargs) - {"dtype"} or dtype not in (torch.float32, torch.float16)
                or xval is None or xval.dtype != dtype or val is None or val.shape != xval.shape):
            continue
        fake_mode = detect_fake_mode([xval])
        if fake_mode is None:
            continue
        strict, forward = _COMPARISONS[op_label(cmp.target)]
        with graph.inserting_before(node), fake_mode:
            def call(op: Any, *args: Any) -> Any:
                new = graph.call_function(op, args)
                new.meta = {**node.meta, "val": op(*(a.meta["val"] if isinstance(a, torch.fx.Node) else a for a in args))}
                return new

            d = call(aten.sub.Tensor, x, c) if forward else call(aten.add.Tensor, call(aten.neg.default, x), c)
            d = call(aten.ceil.default, d) if strict else call(aten.add.Tensor, call(aten.floor.default, d), 1.0)
            s = call(aten.clamp.default, d, 0.0, 1.0)
        node.replace_all_uses_with(s)
        graph.erase_node(node)
        for user in list(cmp.users):
            if op_label(user.target) == "_assert_tensor_metadata":  # a dtype check on the bool result
                graph.erase_node(user)
        if not cmp.users:
            graph.erase_node(cmp)
        count += 1
    if count:
        program.graph_module.recompile()
    return count


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

    def add(a, b, alpha=1):
        return NotImplemented if alpha == 1 or not _is_float(a, b) else a + b * alpha

    def sub(a, b, alpha=1):
        return NotImplemented if alpha == 1 or not _is_float(a, b) else a - b * alpha

    def adaptive_avg_pool2d(x, output_size):
        oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
        h, w = x.shape[-2:]
        if x.dim() != 4 or (oh, ow) == (1, 1) or h % oh or w % ow:
            return NotImplemented  # (1, 1) becomes XNNPACK's global average pooling as it is
        return torch.nn.functional.avg_pool2d(x, (h // oh, w // ow), (h // oh, w // ow))

    def threshold(x, threshold, value):
        return threshold_delegated(x, threshold, value) if x.is_floating_point() else NotImplemented

    def full_like(x, fill_value, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
        if x.numel() > MAX_FOLDED_FULL or layout not in (None, torch.strided):
            return NotImplemented
        return torch.full(x.shape, fill_value, dtype=dtype or x.dtype, device=device or x.device)

    def zeros_like(x, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
        return full_like(x, 0, dtype, layout, device)

    table = {
        aten.add.Tensor: add,
        aten.sub.Tensor: sub,
        aten.threshold.default: threshold,
        aten.adaptive_avg_pool2d.default: adaptive_avg_pool2d,
        aten.full_like.default: full_like,
        aten.zeros_like.default: zeros_like,
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
    if not before:
        return program, {}
    program = program.run_decompositions({op: fn for op, fn in table.items() if op_label(op) in before})
    # the new program shares its constants and state dict with the one passed in; the in-place
    # rewrites and constant_prop_pass below delete entries, which must not break the caller's program
    program._constants, program._state_dict = dict(program.constants), dict(program.state_dict)
    _rewrite_float_compares(program)
    from executorch.exir.operator.util import _QUANT_PRIMITIVES
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    # parameter expands (CLS tokens) and small fills become constants; quantize/dequantize ops are
    # never folded (that would turn an int8 program's weights back into fp32 ones)
    program = constant_prop_pass(program, custom_skip_targets=set(_QUANT_PRIMITIVES))
    after = _op_counts(program)
    return program, {k: n - after.get(k, 0) for k, n in sorted(before.items()) if n > after.get(k, 0)}


def _is_float(a: Any, b: Any) -> bool:
    import torch

    return all(not isinstance(t, torch.Tensor) or t.is_floating_point() for t in (a, b))


def op_label(target: Any) -> str:
    """``aten.layer_norm.default`` → ``layer_norm``."""
    return str(target).removeprefix("aten.").split(".")[0]


_REWRITTEN = {"layer_norm", "mean", "matmul", "select", "unbind", "scaled_dot_product_attention", "expand", "split",
              "split_with_sizes", "squeeze", "unsqueeze", "threshold", "full_like", "zeros_like"}
#: counted only where the rewrite applies (see :func:`_op_counts`)
_POOLS = {"adaptive_avg_pool2d"}


def _op_counts(program: Any) -> dict[str, int]:
    """Ops the rewrites apply to, by label (``add``/``sub`` only with an ``alpha``; ``gt``/``ge``/... only cast to float)."""
    out: dict[str, int] = {}
    for n in program.graph.nodes:
        if n.op != "call_function" or _is_pooling(n):
            continue
        label = op_label(n.target)
        if (label in _REWRITTEN or (label in ("add", "sub") and n.kwargs.get("alpha", 1) != 1) or _is_float_compare(n)
                or (label in _POOLS and _is_tiled_pool(n))):
            out[label] = out.get(label, 0) + 1
    return out


def _is_tiled_pool(node: Any) -> bool:
    """An ``adaptive_avg_pool2d`` to an output other than 1x1 that divides its 4-D input."""
    val, size = node.args[0].meta.get("val"), node.args[1]
    oh, ow = (size, size) if isinstance(size, int) else size
    return getattr(val, "ndim", 0) == 4 and (oh, ow) != (1, 1) and val.shape[-2] % oh == 0 and val.shape[-1] % ow == 0


def _is_float_compare(node: Any) -> bool:
    """A comparison with a scalar whose every use is a cast (``to``/``_to_copy``) or export's dtype assertion."""
    return (op_label(node.target) in _COMPARISONS and str(node.target).endswith(".Scalar") and bool(node.users)
            and all(op_label(u.target) in ("to", "_to_copy", "_assert_tensor_metadata") for u in node.users))


def _is_pooling(node: Any) -> bool:
    """A ``mean`` XNNPACK already takes: 4-D, over dims 2 and 3, keepdim."""
    if op_label(node.target) != "mean" or len(node.args) < 3 or not node.args[2]:
        return False
    val = node.args[0].meta.get("val")
    return getattr(val, "ndim", 0) == 4 and _norm_dims(node.args[1], 4) == [2, 3]
