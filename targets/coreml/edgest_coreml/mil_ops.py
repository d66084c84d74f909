"""NumPy kernels for the MIL operations found in the zoo's Core ML programs (iOS15-iOS18 opsets).

Each kernel takes the operation's named inputs (NumPy arrays, fp16 ones already widened to
float32 by :mod:`edgest_coreml.mil_reference`, which rounds every result back to the declared
output dtype) and returns one array or a tuple of arrays, one per output. Semantics follow
``coremltools.converters.mil.mil.ops.defs`` (the MIL op definitions coremltools ships);
only the parameter values the converter emits are supported, anything else raises
:class:`NotImplementedError` naming the op and the value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

Args = dict[str, Any]
Kernel = Callable[[Args], Any]

#: MIL dtype names (cast's ``dtype``) → NumPy
DTYPES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int8": np.int8, "uint8": np.uint8,
          "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "int64": np.int64, "bool": np.bool_}


def _erf(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf
    except ImportError:  # scipy is optional: exact but slower
        return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)
    return erf(x)


def _gelu(a: Args) -> np.ndarray:
    x, mode = a["x"], a.get("mode", "EXACT")
    if mode == "EXACT":
        return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1.0 + np.exp(-1.702 * x))
    raise NotImplementedError(f"gelu mode {mode}")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|


def _softmax(a: Args) -> np.ndarray:
    x, axis = a["x"], int(a["axis"])
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _axes(a: Args, key: str = "axes") -> tuple[int, ...] | None:
    v = a.get(key)
    return None if v is None else tuple(int(i) for i in np.atleast_1d(v))


def _reduce(fn: Callable[..., np.ndarray]) -> Kernel:
    return lambda a: fn(a["x"], axis=_axes(a), keepdims=bool(a.get("keep_dims", False)))


def _cumsum(a: Args) -> np.ndarray:
    """MIL ``cumsum``: along ``axis``, optionally exclusive (shifted by one) and from the end."""
    x, axis = a["x"], int(a.get("axis", 0))
    x = np.flip(x, axis) if a.get("reverse", False) else x
    out = np.cumsum(x, axis=axis, dtype=x.dtype)
    if a.get("exclusive", False):
        out = out - x
    return np.flip(out, axis) if a.get("reverse", False) else out


#: elementwise MIL ops (coremltools' ``elementwise_unary`` / ``elementwise_binary`` / activation ops), with
#: their documented defaults (``log`` and ``rsqrt`` add ``epsilon``)
ELEMENTWISE: dict[str, Kernel] = {
    "abs": lambda a: np.abs(a["x"]),
    "floor": lambda a: np.floor(a["x"]),
    "ceil": lambda a: np.ceil(a["x"]),
    "sign": lambda a: np.sign(a["x"]),
    "sqrt": lambda a: np.sqrt(a["x"]),
    "rsqrt": lambda a: 1.0 / np.sqrt(a["x"] + a.get("epsilon", 1e-12)),
    "square": lambda a: a["x"] * a["x"],
    "exp": lambda a: np.exp(a["x"]),
    "log": lambda a: np.log(a["x"] + a.get("epsilon", 1e-45)),
    "tanh": lambda a: np.tanh(a["x"]),
    "clip": lambda a: np.minimum(np.maximum(a["x"], a["alpha"]), a["beta"]),
    "maximum": lambda a: np.maximum(a["x"], a["y"]),
    "minimum": lambda a: np.minimum(a["x"], a["y"]),
    "pow": lambda a: np.power(a["x"], a["y"]),
    "floor_div": lambda a: np.floor(a["x"] / a["y"]),
    "mod": lambda a: a["x"] - np.floor(a["x"] / a["y"]) * a["y"],
    "leaky_relu": lambda a: np.where(a["x"] >= 0, a["x"], a.get("alpha", 0.01) * a["x"]),
    "elu": lambda a: np.where(a["x"] > 0, a["x"], a.get("alpha", 1.0) * np.expm1(np.minimum(a["x"], 0))),
    "softplus": lambda a: np.logaddexp(0, a["x"]),
    "reverse": lambda a: np.flip(a["x"], _axes(a)),
    "tile": lambda a: np.tile(a["x"], [int(r) for r in a["reps"]]),
    "cumsum": _cumsum,
}


def _batch_norm(a: Args) -> np.ndarray:
    x = a["x"]
    shape = (1, -1) + (1,) * (x.ndim - 2)  # channels are axis 1
    scale = a.get("gamma", 1.0) / np.sqrt(a["variance"] + a.get("epsilon", 1e-5))
    out = (x - a["mean"].reshape(shape)) * np.reshape(scale, shape)
    return out + np.reshape(a["beta"], shape) if a.get("beta") is not None else out


def _layer_norm(a: Args) -> np.ndarray:
    x = a["x"]
    axes = _axes(a) or tuple(range(x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + a.get("epsilon", 1e-5))
    if a.get("gamma") is not None:
        out = out * a["gamma"]
    return out + a["beta"] if a.get("beta") is not None else out


def _linear(a: Args) -> np.ndarray:
    out = np.matmul(a["x"], a["weight"].T)
    return out + a["bias"] if a.get("bias") is not None else out


def _matmul(a: Args) -> np.ndarray:
    x, y = a["x"], a["y"]
    if a.get("transpose_x", False):
        x = np.swapaxes(x, -1, -2)
    if a.get("transpose_y", False):
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def _reshape(a: Args) -> np.ndarray:
    x, shape = a["x"], [int(d) for d in a["shape"]]
    shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]  # iOS17: 0 copies the input's size
    return x.reshape(shape)


def _squeeze(a: Args) -> np.ndarray:
    axes = _axes(a)
    return np.squeeze(a["x"], axis=axes) if axes is not None else np.squeeze(a["x"])


def _slice_by_index(a: Args) -> np.ndarray:
    x = a["x"]
    n = x.ndim
    begin, end = [int(v) for v in a["begin"]], [int(v) for v in a["end"]]
    stride = [int(v) for v in a["stride"]] if a.get("stride") is not None else [1] * n
    begin_mask = list(a["begin_mask"]) if a.get("begin_mask") is not None else [False] * n
    end_mask = list(a["end_mask"]) if a.get("end_mask") is not None else [False] * n
    squeeze = list(a["squeeze_mask"]) if a.get("squeeze_mask") is not None else [False] * n
    index: list[Any] = []
    for i in range(n):
        if squeeze[i]:
            index.append(begin[i])
            continue
        b = None if begin_mask[i] else begin[i]
        e = None if end_mask[i] else end[i]
        index.append(slice(b, e, stride[i]))
    return x[tuple(index)]


def _split(a: Args) -> tuple[np.ndarray, ...]:
    x, axis = a["x"], int(a["axis"])
    if a.get("split_sizes") is not None:
        return tuple(np.split(x, np.cumsum([int(s) for s in a["split_sizes"]])[:-1], axis=axis))
    return tuple(np.split(x, int(a["num_splits"]), axis=axis))


def _concat(a: Args) -> np.ndarray:
    if a.get("interleave", False):
        raise NotImplementedError("concat interleave=True")
    return np.concatenate(a["values"], axis=int(a["axis"]))


def _pad(a: Args) -> np.ndarray:
    x, pad = a["x"], [int(p) for p in a["pad"]]
    lead = x.ndim - len(pad) // 2  # pad lists (begin, end) pairs for the last len(pad)/2 axes
    widths = [(0, 0)] * lead + [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]
    mode = a.get("mode", "constant")
    if mode == "constant":
        return np.pad(x, widths, constant_values=float(a.get("constant_val", 0.0)))
    if mode in ("reflect", "replicate"):
        return np.pad(x, widths, mode="reflect" if mode == "reflect" else "edge")
    raise NotImplementedError(f"pad mode {mode}")


def _spatial_pads(a: Args, spatial: tuple[int, ...], kernel: tuple[int, ...], strides: tuple[int, ...],
                  dilations: tuple[int, ...]) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial axis for MIL's pad_type valid / custom / same / same_lower."""
    pad_type = a.get("pad_type", "valid")
    if pad_type == "valid":
        return [(0, 0)] * len(spatial)
    if pad_type == "custom":
        p = [int(v) for v in a["pad"]]
        return [(p[2 * i], p[2 * i + 1]) for i in range(len(spatial))]
    if pad_type in ("same", "same_lower"):
        pads = []
        for n, k, s, d in zip(spatial, kernel, strides, dilations):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small, big = total // 2, total - total // 2
            pads.append((big, small) if pad_type == "same_lower" else (small, big))
        return pads
    raise NotImplementedError(f"pad_type {pad_type}")


def _windows(xp: np.ndarray, kernel: tuple[int, ...], strides: tuple[int, ...], dilations: tuple[int, ...],
             out: tuple[int, ...]) -> Any:
    """(kernel position, strided view of ``xp`` that position sees), over the trailing spatial axes."""
    lead = xp.ndim - len(kernel)
    for pos in itertools.product(*(range(k) for k in kernel)):
        index = tuple(slice(p * d, p * d + (o - 1) * s + 1, s) for p, d, s, o in zip(pos, dilations, strides, out))
        yield pos, xp[(slice(None),) * lead + index]


def _conv(a: Args) -> np.ndarray:
    """N-d grouped convolution: one batched matmul per kernel position (BLAS does the channel sums)."""
    x, w = a["x"], a["weight"]
    groups = int(a.get("groups", 1))
    k = tuple(w.shape[2:])
    nd = len(k)
    strides = tuple(int(s) for s in a["strides"]) if a.get("strides") is not None else (1,) * nd
    dil = tuple(int(d) for d in a["dilations"]) if a.get("dilations") is not None else (1,) * nd
    pads = _spatial_pads(a, x.shape[2:], k, strides, dil)
    xp = np.pad(x, [(0, 0), (0, 0), *pads])
    out_sp = tuple((xp.shape[2 + i] - (k[i] - 1) * dil[i] - 1) // strides[i] + 1 for i in range(nd))
    n, c_out = x.shape[0], w.shape[0]
    cin_g, cout_g = w.shape[1], c_out // groups
    wg = w.reshape(groups, cout_g, cin_g, *k)
    acc = np.zeros((n, groups, cout_g, math.prod(out_sp)), np.float32)
    for pos, view in _windows(xp, k, strides, dil, out_sp):
        acc += np.matmul(wg[(...,) + pos], view.reshape(n, groups, cin_g, -1))
    out = acc.reshape(n, c_out, *out_sp)
    if a.get("bias") is not None:
        out = out + a["bias"].reshape((1, -1) + (1,) * nd)
    return out


def _pool(kind: str) -> Kernel:
    def run(a: Args) -> np.ndarray:
        x = a["x"]
        k = tuple(int(v) for v in a["kernel_sizes"])
        nd = len(k)
        strides = tuple(int(s) for s in a["strides"]) if a.get("strides") is not None else (1,) * nd
        pads = _spatial_pads(a, x.shape[2:], k, strides, (1,) * nd)
        sp = x.shape[2:]
        rounding = math.ceil if a.get("ceil_mode", False) else math.floor
        out_sp = tuple(int(rounding((sp[i] + sum(pads[i]) - k[i]) / strides[i])) + 1 for i in range(nd))
        # ceil mode: extra end padding so the last window exists (never counted, never the max)
        extra = [max((out_sp[i] - 1) * strides[i] + k[i] - sp[i] - pads[i][0] - pads[i][1], 0) for i in range(nd)]
        widths = [(0, 0), (0, 0)] + [(p[0], p[1] + e) for p, e in zip(pads, extra)]
        if kind == "max":
            xp = np.pad(x, widths, constant_values=-np.inf)
            out = np.full(x.shape[:2] + out_sp, -np.inf, np.float32)
            for _, view in _windows(xp, k, strides, (1,) * nd, out_sp):
                np.maximum(out, view, out=out)
            return out
        xp = np.pad(x, widths)
        total = np.zeros(x.shape[:2] + out_sp, np.float32)
        for _, view in _windows(xp, k, strides, (1,) * nd, out_sp):
            total += view
        if a.get("exclude_padding_from_average", False):
            ones = np.pad(np.ones((1, 1) + sp, np.float32), widths)
            count = sum(view for _, view in _windows(ones, k, strides, (1,) * nd, out_sp))
            return total / count
        return total / math.prod(k)

    return run


def _cast(a: Args) -> np.ndarray:
    return a["x"].astype(DTYPES[str(a["dtype"])])


def _unpack_bits(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """Sub-byte values packed little-endian (first value in the lowest bits), as MIL blobs store them."""
    bits = np.unpackbits(np.asarray(packed, np.uint8).ravel(), bitorder="little")[: count * nbits]
    return (bits.reshape(count, nbits).astype(np.uint32) << np.arange(nbits, dtype=np.uint32)).sum(axis=1)


def _affine_dequantize(a: Args) -> np.ndarray:
    """iOS16/17 ``constexpr_affine_dequantize``: scale * (q - zero_point) along ``axis``."""
    q = a["quantized_data"].astype(np.float32)
    axis = int(a["axis"]) % q.ndim
    shape = [1] * q.ndim
    shape[axis] = -1

    def along(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.float32)
        return v if v.ndim == 0 else v.reshape(shape)

    return (q - along(a["zero_point"])) * along(a["scale"])


def _lut_to_dense(a: Args) -> np.ndarray:
    """iOS16/17 ``constexpr_lut_to_dense``: a 1-D look-up table indexed by packed ``log2(len(lut))``-bit indices."""
    lut, shape = a["lut"], [int(d) for d in a["shape"]]
    if lut.ndim != 1:
        raise NotImplementedError(f"constexpr_lut_to_dense with a {lut.ndim}-D table")
    nbits = int(np.log2(lut.size))
    return lut[_unpack_bits(a["indices"], nbits, math.prod(shape))].reshape(shape)


def _blockwise_shift_scale(a: Args) -> np.ndarray:
    """iOS18 ``constexpr_blockwise_shift_scale``: scale * (data - offset), each scale entry covering one block."""
    data = a["data"].astype(np.float32)

    def blocks(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.float32)
        for axis, (n, m) in enumerate(zip(data.shape, v.shape)):
            v = np.repeat(v, n // m, axis=axis)
        return v

    out = data - blocks(a["offset"]) if a.get("offset") is not None else data
    return out * blocks(a["scale"])


def _along(v: Any, axis: Any, ndim: int) -> np.ndarray:
    """A scale or zero point: a scalar, or a vector along ``axis``."""
    v = np.asarray(v, np.float32)
    if v.ndim == 0 or axis is None:
        return v
    shape = [1] * ndim
    shape[int(axis) % ndim] = -1
    return v.reshape(shape)


def _quantize(a: Args) -> np.ndarray:
    """iOS17 ``quantize``: round(x / scale) + zero_point, saturated to int8 / uint8."""
    x = a["input"]
    info = np.iinfo(DTYPES[str(a["output_dtype"])])
    q = np.round(x / _along(a["scale"], a.get("axis"), x.ndim))  # half to even, as torch's quantize does
    if a.get("zero_point") is not None:
        q = q + _along(a["zero_point"], a.get("axis"), x.ndim)
    return np.clip(q, info.min, info.max)


def _dequantize(a: Args) -> np.ndarray:
    """iOS17 ``dequantize``: (q - zero_point) * scale."""
    q = a["input"].astype(np.float32)
    if a.get("zero_point") is not None:
        q = q - _along(a["zero_point"], a.get("axis"), q.ndim)
    return q * _along(a["scale"], a.get("axis"), q.ndim)


#: compile-time ops whose parameters are attributes (iOS16/17); decompressed once, at load
CONSTEXPR: dict[str, Kernel] = {
    "constexpr_affine_dequantize": _affine_dequantize,
    "constexpr_lut_to_dense": _lut_to_dense,
}

#: op type → kernel; the interpreter refuses a program with any other op
OPS: dict[str, Kernel] = {
    "add": lambda a: a["x"] + a["y"],
    "sub": lambda a: a["x"] - a["y"],
    "mul": lambda a: a["x"] * a["y"],
    "real_div": lambda a: a["x"] / a["y"],
    "greater_equal": lambda a: a["x"] >= a["y"],
    "select": lambda a: np.where(a["cond"], a["a"], a["b"]),  # torch.where (a spiking step's LIF reset)
    "relu": lambda a: np.maximum(a["x"], 0),
    "sigmoid": lambda a: _sigmoid(a["x"]),
    "silu": lambda a: a["x"] * _sigmoid(a["x"]),
    "gelu": _gelu,
    "threshold": lambda a: np.maximum(a["x"], a["alpha"]),
    "linear_activation": lambda a: a["alpha"] * a["x"] + a.get("beta", 0.0),
    "softmax": _softmax,
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "linear": _linear,
    "matmul": _matmul,
    "conv": _conv,
    "max_pool": _pool("max"),
    "avg_pool": _pool("avg"),
    "reduce_mean": _reduce(np.mean),
    "reduce_sum": _reduce(np.sum),
    "reduce_max": _reduce(np.max),
    "reduce_min": _reduce(np.min),
    "reduce_log_sum_exp": lambda a: np.log(_reduce(np.sum)({**a, "x": np.exp(a["x"] - a["x"].max())})) + a["x"].max(),
    "reshape": _reshape,
    "transpose": lambda a: np.transpose(a["x"], [int(p) for p in a["perm"]]),
    "squeeze": _squeeze,
    "expand_dims": lambda a: np.expand_dims(a["x"], _axes(a)),
    "slice_by_index": _slice_by_index,
    "split": _split,
    "concat": _concat,
    "pad": _pad,
    "cast": _cast,
    "constexpr_blockwise_shift_scale": _blockwise_shift_scale,  # iOS18: parameters are inputs
    "quantize": _quantize,
    "dequantize": _dequantize,
    **ELEMENTWISE,
}
