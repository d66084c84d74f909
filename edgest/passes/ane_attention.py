"""Channels-first attention modules (Apple ml-ane-transformers style) and the module-level swap.

Imports torch at module level: :mod:`edgest.passes.attention_to_conv` imports this module lazily,
so registering the pass (``edgest list passes``) never loads torch.

Layout: activations are ``(B, C, 1, S)``; q/k/v and the output projection are 1x1 convolutions;
heads are explicit slices along channels, attention is computed per head and the heads are
concatenated along channels. The attention scale is folded into the q projection. Two forms of
the per-head maths, numerically the same:

* ``matmul`` (default): scores ``(B, Sq, Sk)`` with the softmax over the last axis (one
  transpose of q per block; v and the output stay channels-first, ``v @ P^T`` per head), which
  every runtime takes well (ONNX Runtime fuses the ``P^T`` into its MatMul);
* ``einsum``: ml-ane-transformers' exact formulation, ``einsum('bchq,bkhc->bkhq')`` with the
  softmax over axis 1 and ``einsum('bkhq,bchk->bchq')``, every tensor 4-D (what the ANE wants).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FORMS = ("matmul", "einsum")


class LayerNormChannels(nn.Module):
    """LayerNorm over the channel axis of ``(B, C, 1, S)``: ``nn.LayerNorm(C)`` on each token."""

    def __init__(self, channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.channels, self.eps = channels, eps
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        zc = x - x.mean(dim=1, keepdim=True)
        out = zc * torch.rsqrt((zc * zc).mean(dim=1, keepdim=True) + self.eps)
        if self.weight is not None:
            out = out * self.weight.view(1, -1, 1, 1)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out


class ConvAttention(nn.Module):
    """Multi-head attention on ``(B, C, 1, S)``: ``proj(attend(split(qkv(norm(x)))))``, 1x1 convs."""

    def __init__(self, in_dim: int, num_heads: int, qk_head_dim: int, v_head_dim: int, out_dim: int, *,
                 qkv_bias: bool = True, proj_bias: bool = True, form: str = "matmul",
                 norm: LayerNormChannels | None = None) -> None:
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"unknown attention form '{form}'; choose one of {', '.join(FORMS)}")
        self.num_heads, self.qk_head_dim, self.v_head_dim, self.form = num_heads, qk_head_dim, v_head_dim, form
        self.scale = 1.0  # folded into the q rows of ``qkv`` by :meth:`load_linear`
        self.norm = norm
        self.qkv = nn.Conv2d(in_dim, num_heads * (2 * qk_head_dim + v_head_dim), 1, bias=qkv_bias)
        self.proj = nn.Conv2d(num_heads * v_head_dim, out_dim, 1, bias=proj_bias)

    @torch.no_grad()
    def load_linear(self, qkv_weight: Tensor, qkv_bias: Tensor | None, proj_weight: Tensor,
                    proj_bias: Tensor | None, scale: float) -> ConvAttention:
        """Copy linear weights (rows ordered q heads, k heads, v heads); fold ``scale`` into q."""
        nq = self.num_heads * self.qk_head_dim
        self.scale = float(scale)
        w = qkv_weight.detach().clone()
        w[:nq] *= scale
        self.qkv.weight.copy_(w.reshape(*w.shape, 1, 1))
        if self.qkv.bias is not None:
            b = qkv_bias.detach().clone() if qkv_bias is not None else torch.zeros_like(self.qkv.bias)
            b[:nq] *= scale
            self.qkv.bias.copy_(b)
        self.proj.weight.copy_(proj_weight.detach().reshape(*proj_weight.shape, 1, 1))
        if self.proj.bias is not None:
            self.proj.bias.copy_(proj_bias.detach() if proj_bias is not None else torch.zeros_like(self.proj.bias))
        return self

    def attend(self, q: Tensor, k: Tensor, v: Tensor, need_weights: bool = False) -> tuple[Tensor, list[Tensor]]:
        """Per-head attention; q ``(B, H*dqk, 1, Sq)`` (pre-scaled), k, v ``(B, H*d, 1, Sk)`` → ``(B, H*dv, 1, Sq)``.

        Also returns the per-head probabilities ``(B, Sq, Sk)`` when ``need_weights``.
        """
        dqk, dv = self.qk_head_dim, self.v_head_dim
        if self.form == "einsum":
            qs, ks, vs = q.split(dqk, dim=1), k.transpose(1, 3).split(dqk, dim=3), v.split(dv, dim=1)
            probs = [torch.einsum("bchq,bkhc->bkhq", qh, kh).softmax(dim=1) for qh, kh in zip(qs, ks)]
            out = torch.cat([torch.einsum("bkhq,bchk->bchq", ph, vh) for ph, vh in zip(probs, vs)], dim=1)
            return out, ([p.squeeze(2).transpose(1, 2) for p in probs] if need_weights else [])
        qs = q.squeeze(2).transpose(1, 2).split(dqk, dim=2)  # H x (B, Sq, dqk): the one transpose
        ks, vs = k.squeeze(2).split(dqk, dim=1), v.squeeze(2).split(dv, dim=1)  # H x (B, d, Sk), channels-first
        probs = [torch.matmul(qh, kh).softmax(dim=-1) for qh, kh in zip(qs, ks)]  # H x (B, Sq, Sk)
        out = torch.cat([torch.matmul(vh, ph.transpose(1, 2)) for ph, vh in zip(probs, vs)], dim=1)  # (B, H*dv, Sq)
        return out.unsqueeze(2), (probs if need_weights else [])

    def forward_bc1s(self, x: Tensor) -> Tensor:
        """Self-attention on ``(B, C, 1, S)`` → ``(B, out_dim, 1, S)``."""
        if self.norm is not None:
            x = self.norm(x)
        nq = self.num_heads * self.qk_head_dim
        q, k, v = self.qkv(x).split([nq, nq, self.num_heads * self.v_head_dim], dim=1)
        return self.proj(self.attend(q, k, v)[0])

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_bc1s(x)

    def linear_weights(self) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """The equivalent unscaled linear weights (for the exact fallback on masked calls)."""
        nq = self.num_heads * self.qk_head_dim
        w = self.qkv.weight.flatten(1)
        b = self.qkv.bias
        s = torch.ones(w.shape[0], dtype=w.dtype, device=w.device)
        s[:nq] = 1.0 / self.scale
        return w * s[:, None], (None if b is None else b * s), self.proj.weight.flatten(1), self.proj.bias


def to_bc1s(x: Tensor, order: str, batch: int, tokens: int) -> Tensor:
    """Token-major ``(..., C)`` whose rows are ``batch x tokens`` (``order`` "bs") or ``tokens x batch`` ("sb") → ``(B, C, 1, S)``."""
    c = x.shape[-1]
    rows = (batch, tokens) if order == "bs" else (tokens, batch)
    if tuple(x.shape) != (*rows, c):
        x = x.reshape(*rows, c)
    return x.transpose(1, 2).unsqueeze(2) if order == "bs" else x.permute(1, 2, 0).unsqueeze(2)


def from_bc1s(y: Tensor, order: str, shape: tuple[int, ...]) -> Tensor:
    """Inverse of :func:`to_bc1s`: ``(B, C, 1, S)`` → rows in ``order``, reshaped to ``shape``."""
    y = y.squeeze(2)
    y = y.transpose(1, 2) if order == "bs" else y.permute(2, 0, 1)
    return y if tuple(y.shape) == tuple(shape) else y.reshape(shape)


class ConvAttentionTokens(ConvAttention):
    """A graph-level rewrite: token-major tensor in, token-major tensor out; one layout change each way."""

    def __init__(self, *args: Any, batch: int, tokens: int, in_order: str, out_order: str,
                 out_shape: tuple[int, ...], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.batch, self.tokens, self.in_order, self.out_order = batch, tokens, in_order, out_order
        self.out_shape = tuple(out_shape)

    def forward(self, x: Tensor) -> Tensor:
        y = self.forward_bc1s(to_bc1s(x, self.in_order, self.batch, self.tokens))
        return from_bc1s(y, self.out_order, self.out_shape)


class ConvAttentionTimm(ConvAttention):
    """Drop-in for timm-style ``Attention`` (``x: (B, N, C)`` → ``(B, N, C)``)."""

    def forward(self, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        if attn_mask is not None:  # exact fallback: the masked call keeps the token-major maths
            w, b, pw, pb = self.linear_weights()
            q, k, v = F.linear(x, w, b).unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
            o = F.scaled_dot_product_attention(q * self.scale, k, v, attn_mask=attn_mask, scale=1.0)
            return F.linear(o.transpose(1, 2).flatten(2), pw, pb)
        b, n, _ = x.shape
        return from_bc1s(self.forward_bc1s(to_bc1s(x, "bs", b, n)), "bs", (b, n, self.proj.out_channels))


class ConvMultiheadAttention(ConvAttention):
    """Drop-in for ``nn.MultiheadAttention`` (same call signature and outputs).

    Unmasked calls run channels-first (self-attention through the fused qkv conv, cross-attention
    through slices of it); calls with a mask or ``is_causal`` use the exact token-major fallback.
    """

    def __init__(self, embed_dim: int, num_heads: int, batch_first: bool, bias: bool, form: str) -> None:
        hd = embed_dim // num_heads
        super().__init__(embed_dim, num_heads, hd, hd, embed_dim, qkv_bias=bias, proj_bias=bias, form=form)
        self.embed_dim, self.batch_first, self.head_dim = embed_dim, batch_first, hd

    def _bc1s(self, t: Tensor) -> Tensor:
        return t.transpose(1, 2).unsqueeze(2) if self.batch_first else t.permute(1, 2, 0).unsqueeze(2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        if key_padding_mask is not None or attn_mask is not None or is_causal:
            return self._fallback(query, key, value, key_padding_mask, need_weights, attn_mask,
                                  average_attn_weights, is_causal)
        unbatched, self_attention = query.dim() == 2, query is key and key is value
        if unbatched:
            query, key, value = (t.unsqueeze(0 if self.batch_first else 1) for t in (query, key, value))
        e = self.embed_dim
        if self_attention:
            q, k, v = self.qkv(self._bc1s(query)).split(e, dim=1)
        else:
            w, b = self.qkv.weight, self.qkv.bias
            q, k, v = (F.conv2d(self._bc1s(t), w[i * e:(i + 1) * e], None if b is None else b[i * e:(i + 1) * e])
                       for i, t in enumerate((query, key, value)))
        out, probs = self.attend(q, k, v, need_weights)
        y = self.proj(out).squeeze(2)  # (B, E, Sq)
        y = y.transpose(1, 2) if self.batch_first else y.permute(2, 0, 1)
        weights = None
        if need_weights:
            weights = torch.stack(probs, dim=1)  # (B, H, Sq, Sk)
            weights = weights.mean(dim=1) if average_attn_weights else weights
        if unbatched:
            y = y.squeeze(0 if self.batch_first else 1)
            weights = None if weights is None else weights.squeeze(0)
        return y, weights

    def _fallback(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None,
                  need_weights: bool, attn_mask: Tensor | None, average: bool, is_causal: bool) -> tuple[Tensor, Tensor | None]:
        w, b, pw, pb = self.linear_weights()
        if self.batch_first and query.dim() == 3:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        out, weights = F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, w, b, None, None, False, 0.0, pw, pb,
            training=False, key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            average_attn_weights=average, is_causal=is_causal)
        if self.batch_first and query.dim() == 3:
            out = out.transpose(0, 1)
        return out, weights


# --- module-level swap -------------------------------------------------------------------------


def _is_identity(m: Any) -> bool:
    return m is None or isinstance(m, nn.Identity) or (isinstance(m, nn.Dropout) and (m.p == 0 or not m.training))


def classify(m: nn.Module) -> str | None:
    """``"MultiheadAttention"``, ``"Attention"`` (timm-style) or None."""
    if isinstance(m, nn.MultiheadAttention):
        return "MultiheadAttention"
    if type(m).__name__ == "Attention" and all(hasattr(m, a) for a in ("qkv", "proj", "num_heads")):
        return "Attention"
    return None


def _why_not(m: nn.Module, kind: str, parent: nn.Module | None) -> str | None:
    if kind == "MultiheadAttention":
        if isinstance(parent, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
            return f"inside nn.{type(parent).__name__} (its fused fast path reads the module's weights)"
        if not m._qkv_same_embed_dim:
            return "kdim/vdim differ from embed_dim (cross-attention)"
        if m.bias_k is not None or m.add_zero_attn:
            return "bias_k/bias_v or add_zero_attn"
        if m.training and m.dropout > 0:
            return "training-mode dropout"
        return None
    if not (isinstance(m.qkv, nn.Linear) and isinstance(m.proj, nn.Linear)):
        return "qkv/proj are not nn.Linear"
    inner = m.qkv.out_features
    if inner % 3 or m.proj.in_features != inner // 3 or (inner // 3) % m.num_heads:
        return "qkv/proj/num_heads shapes do not match a fused q|k|v projection"
    for attr in ("q_norm", "k_norm", "norm"):
        if not _is_identity(getattr(m, attr, None)):
            return f"{attr} is not identity (qk-norm / scale-norm)"
    for attr in ("attn_drop", "proj_drop"):
        if not _is_identity(getattr(m, attr, None)):
            return "training-mode dropout"
    return None


def _build(m: nn.Module, kind: str, form: str) -> ConvAttention:
    if kind == "MultiheadAttention":
        new: ConvAttention = ConvMultiheadAttention(m.embed_dim, m.num_heads, m.batch_first, m.in_proj_bias is not None, form)
        new.load_linear(m.in_proj_weight, m.in_proj_bias, m.out_proj.weight, m.out_proj.bias, new.head_dim**-0.5)
    else:
        inner = m.qkv.out_features // 3
        hd = inner // m.num_heads
        new = ConvAttentionTimm(m.qkv.in_features, m.num_heads, hd, hd, m.proj.out_features,
                                qkv_bias=m.qkv.bias is not None, proj_bias=m.proj.bias is not None, form=form)
        new.load_linear(m.qkv.weight, m.qkv.bias, m.proj.weight, m.proj.bias, float(getattr(m, "scale", hd**-0.5)))
    p = next(m.parameters())
    return new.to(device=p.device, dtype=p.dtype).train(m.training)


def _probe(model: nn.Module, candidates: dict[int, str], example_inputs: tuple[Any, ...]) -> dict[int, set[str]] | None:
    """How each candidate is called on ``example_inputs``: {"self", "cross", "masked"} per module id."""
    seen: dict[int, set[str]] = {}

    def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        flags = seen.setdefault(id(mod), set())
        if candidates[id(mod)] == "MultiheadAttention":
            q, k, v = (list(args) + [kwargs.get(n) for n in ("query", "key", "value")[len(args):]])[:3]
            flags.add("self" if q is k and k is v else "cross")
            masks = [kwargs.get("key_padding_mask"), kwargs.get("attn_mask")] + [a for i, a in enumerate(args) if i in (3, 5)]
            if any(x is not None for x in masks) or kwargs.get("is_causal") or (len(args) > 7 and args[7]):
                flags.add("masked")
        else:
            flags.add("self")
            if (len(args) > 1 and args[1] is not None) or kwargs.get("attn_mask") is not None:
                flags.add("masked")

    mods = {id(m): m for m in model.modules() if id(m) in candidates}
    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in mods.values()]
    try:
        with torch.no_grad():
            model(*example_inputs)
    except Exception:  # noqa: BLE001 - no probe: swap on structure alone (the swap is exact either way)
        return None
    finally:
        for h in handles:
            h.remove()
    return seen


def rewrite_modules(model: nn.Module, example_inputs: tuple[Any, ...] | None = None, *, form: str = "matmul",
                    inplace: bool = False) -> tuple[nn.Module, list[dict[str, str]], list[dict[str, str]]]:
    """Swap ``nn.MultiheadAttention`` and timm-style ``Attention`` for channels-first equivalents.

    Returns ``(model, rewritten, left_alone)``; each entry has ``where`` and ``kind`` (and
    ``reason`` for those left alone). The model is copied unless ``inplace``. With
    ``example_inputs``, a forward pass records how each module is called, and modules called as
    cross-attention, with a mask or not at all are left alone.
    """
    if form not in FORMS:
        raise ValueError(f"unknown attention form '{form}'; choose one of {', '.join(FORMS)}")
    if not inplace:
        model = copy.deepcopy(model)
    parents: dict[int, tuple[nn.Module, str, str]] = {}  # first (parent, child name, dotted path) per module
    for pname, parent in model.named_modules(remove_duplicate=False):
        for cname, child in parent.named_children():
            parents.setdefault(id(child), (parent, cname, f"{pname}.{cname}" if pname else cname))
    candidates = {i: k for i, (p, c, _) in parents.items() if (k := classify(getattr(p, c))) is not None}
    calls = _probe(model, candidates, example_inputs) if example_inputs is not None and candidates else None
    built: dict[int, nn.Module | None] = {}
    rewritten, left = [], []
    for i, kind in candidates.items():
        parent, cname, where = parents[i]
        m = getattr(parent, cname)
        reason = _why_not(m, kind, parent)
        if reason is None and calls is not None:
            flags = calls.get(i, set())
            reason = ("not called on the example input" if not flags else "cross-attention" if "cross" in flags
                      else "called with a mask" if "masked" in flags else None)
        if reason is not None:
            left.append({"where": where, "kind": kind, "reason": reason})
            built[i] = None
            continue
        built[i] = _build(m, kind, form)
        rewritten.append({"where": where, "kind": kind, "via": "module swap"})
    for pname, parent in list(model.named_modules(remove_duplicate=False)):
        for cname, child in list(parent.named_children()):
            if built.get(id(child)) is not None:
                setattr(parent, cname, built[id(child)])
    return model, rewritten, left
