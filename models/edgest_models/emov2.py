"""EMOv2: an attention-based mobile backbone built from one block type, i2RMB.

Reference:
    Zhang et al., "EMOv2: Pushing 5M Vision Model Frontier", 2024, arXiv:2412.06674
    (official code: zhangzjn/EMOv2, ``model/lib_emo/emo2.py``, ``EMO2_{1,2,5,20}M_k5_hybrid``).

Layout: a stem (Conv3x3/s2 + BN + SiLU, depthwise 3x3 + BN + SiLU, Conv1x1) and four stages of
Improved Inverted Residual Mobile Blocks (i2RMB):

    x -> Norm -> eop -> (dw kxk + BN + SiLU, residual inside the block) -> Conv1x1 -> gamma * x (+ shortcut)

where the expansion operator ``eop`` is a 1x1 conv (+act) in stages 1-2 and in the first,
stride-2 block of every stage, and a windowed attention elsewhere that attends both within
local ``w x w`` windows and across a spanning (dilated) ``w x w`` grid with the same q, k, v,
summing the two. The classifier is LayerNorm2d -> global mean -> Linear.

Faithful to the official implementation (parameter counts 1,460,844 / 2,384,312 / 5,126,440 /
20,195,208; the configs are in :mod:`edgest_models.configs`):
    * all norms use eps 1e-6; LayerNorm2d is channels-last LayerNorm; GELU is the erf form;
    * 1x1 eop convs and the attention q/k and v convs have biases, every other conv in the
      blocks has none; v = GELU(Conv1x1(dim_in -> dim_in * exp)), split over dim_in / dim_head heads;
    * the first block of a stage has no skip, stride 2 and twice the stage's expansion ratio;
      layer scale (init 1e-6) is applied in every block, with or without the skip;
    * attention inputs are zero-padded (bottom/right) to a multiple of the window and the
      output cropped; padded tokens take part in attention unmasked, as in the official code;
    * state_dict keys match the official checkpoints (``stage0``..``stage4``, ``eops.0``,
      ``conv_local``, ``proj``, ``ls.gamma``, ``norm.norm``, ``head``).
Deviations: forward returns the logits tensor (the official code returns a dict); drop-path and
dropout are omitted (inference zoo); layer scale is not applied in place.

Export notes: static shapes only; window partitioning is reshape/permute with at most 6-D
tensors, padding amounts are Python ints from static sizes, and attention is explicit
matmul + softmax (no masks, no data-dependent control flow).

Video variants (``emov2_*_video``) run the image model per frame, with frames folded into the
batch ((B, 3, T, H, W) -> (B*T, 3, H, W)), and average the logits over time (TSN-style).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgest_models.configs import EMOV2 as CONFIGS

__all__ = [
    "LayerNorm2d", "ConvNormAct", "HybridWindowAttention", "I2RMB", "EMOv2", "EMOv2Video",
    "emov2_1m", "emov2_2m", "emov2_5m", "emov2_20m", "emov2_1m_video", "emov2_2m_video", "emov2_5m_video",
    "emov2_20m_video", "emov2_tiny_video", "CONFIGS",
]

EPS = 1e-6


class LayerNorm2d(nn.Module):
    """LayerNorm over channels of an NCHW tensor (channels-last LayerNorm, as in the official code)."""

    def __init__(self, dim: int, eps: float = EPS) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)  # nested as ``.norm`` to keep official key names

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _norm(kind: str, dim: int) -> nn.Module:
    return {"bn": lambda: nn.BatchNorm2d(dim, eps=EPS), "ln": lambda: LayerNorm2d(dim), "none": nn.Identity}[kind]()


def _act(kind: str) -> nn.Module:
    return {"silu": nn.SiLU, "gelu": nn.GELU, "none": nn.Identity}[kind]()


class ConvNormAct(nn.Module):
    """Conv2d ("same" padding for odd k) -> norm -> activation."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, bias: bool = False,
                 norm: str = "none", act: str = "none") -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=bias)
        self.norm = _norm(norm, cout)
        self.act = _act(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class ConvEop(nn.Module):
    """Expansion operator of conv blocks: Conv1x1(dim_in -> dim_mid, bias) -> act."""

    def __init__(self, dim_in: int, dim_mid: int, act: str) -> None:
        super().__init__()
        self.net = ConvNormAct(dim_in, dim_mid, 1, bias=True, act=act)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _to_windows(t: Tensor, wh: int, ww: int, n1: int, n2: int, spanning: bool) -> Tensor:
    """(B, C, n1*wh, n2*ww) -> (B*n1*n2, wh*ww, C).

    Local: window (a, b) holds pixels (a*wh + i, b*ww + j). Spanning: it holds (i*n1 + a, j*n2 + b),
    a dilated grid covering the whole map.
    """
    b, c = t.shape[0], t.shape[1]
    if spanning:
        t = t.reshape(b, c, wh, n1, ww, n2).permute(0, 3, 5, 2, 4, 1)
    else:
        t = t.reshape(b, c, n1, wh, n2, ww).permute(0, 2, 4, 3, 5, 1)
    return t.reshape(b * n1 * n2, wh * ww, c)


def _from_windows(t: Tensor, b: int, wh: int, ww: int, n1: int, n2: int, spanning: bool) -> Tensor:
    """Inverse of :func:`_to_windows`: (B*n1*n2, wh*ww, C) -> (B, C, n1*wh, n2*ww)."""
    c = t.shape[-1]
    t = t.reshape(b, n1, n2, wh, ww, c)
    t = t.permute(0, 5, 3, 1, 4, 2) if spanning else t.permute(0, 5, 1, 3, 2, 4)
    return t.reshape(b, c, n1 * wh, n2 * ww)


class HybridWindowAttention(nn.Module):
    """Expansion operator of attention blocks (official ``EW_MHSA_Hybrid``, attn_pre=False).

    q, k = Conv1x1(dim_in -> 2*dim_in, bias); v = act(Conv1x1(dim_in -> dim_mid, bias)); the map is
    padded to a multiple of the window, attention runs within local windows and within spanning
    (dilated) windows, and the two outputs are summed and cropped back.
    """

    def __init__(self, dim_in: int, dim_mid: int, act: str, dim_head: int, window_size: int) -> None:
        super().__init__()
        if dim_in % dim_head or (dim_mid % (dim_in // dim_head)):
            raise ValueError(f"an attention stage of width {dim_in} (expanded {dim_mid}) cannot be split into heads of "
                             f"{dim_head}; give dims that are multiples of their dim_heads")
        self.num_heads = dim_in // dim_head
        self.dim_in, self.dim_mid, self.dim_head, self.window_size = dim_in, dim_mid, dim_head, window_size
        self.scale = dim_head**-0.5
        self.qk = ConvNormAct(dim_in, 2 * dim_in, 1, bias=True)
        self.v = ConvNormAct(dim_in, dim_mid, 1, bias=True, act=act)

    def pads(self, h: int, w: int) -> tuple[int, int]:
        """(bottom, right) zero padding for an h x w map; Python ints, static under export."""
        ws = self.window_size
        return (-h) % ws if ws > 0 else 0, (-w) % ws if ws > 0 else 0

    def _attend(self, qkv: Tensor) -> Tensor:
        bw, n, _ = qkv.shape
        c, m, heads = self.dim_in, self.dim_mid, self.num_heads
        q = qkv[..., :c].reshape(bw, n, heads, self.dim_head).transpose(1, 2)
        k = qkv[..., c : 2 * c].reshape(bw, n, heads, self.dim_head).transpose(1, 2)
        v = qkv[..., 2 * c :].reshape(bw, n, heads, m // heads).transpose(1, 2)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return (attn @ v).transpose(1, 2).reshape(bw, n, m)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        pad_b, pad_r = self.pads(h, w)
        if pad_b or pad_r:
            x = F.pad(x, (0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        wh, ww = (self.window_size, self.window_size) if self.window_size > 0 else (hp, wp)
        n1, n2 = hp // wh, wp // ww
        qkv = torch.cat([self.qk(x), self.v(x)], dim=1)

        def attend(spanning: bool) -> Tensor:
            o = self._attend(_to_windows(qkv, wh, ww, n1, n2, spanning))
            return _from_windows(o, b, wh, ww, n1, n2, spanning)

        out = attend(spanning=True) + attend(spanning=False)
        if pad_b or pad_r:
            out = out[:, :, :h, :w]
        return out


class LayerScale2d(nn.Module):
    def __init__(self, dim: int, init_value: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(init_value * torch.ones(1, dim, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class I2RMB(nn.Module):
    """Improved Inverted Residual Mobile Block (official ``iiRMB``)."""

    def __init__(self, dim_in: int, dim_out: int, exp_ratio: float, norm: str, act: str, dw_ks: int = 5,
                 stride: int = 1, has_skip: bool = True, attention: bool = False, dim_head: int = 32,
                 window_size: int = 7, ls_value: float = 1e-6) -> None:
        super().__init__()
        dim_mid = int(dim_in * exp_ratio)
        self.has_skip = has_skip and dim_in == dim_out and stride == 1
        self.norm = _norm(norm, dim_in)
        if attention:
            eop: nn.Module = HybridWindowAttention(dim_in, dim_mid, act, dim_head, window_size)
        else:
            eop = ConvEop(dim_in, dim_mid, act)
        self.eops = nn.ModuleList([eop])  # a list in the official code (hybrid eops); one here
        self.conv_local = ConvNormAct(dim_mid, dim_mid, dw_ks, stride=stride, groups=dim_mid, norm="bn", act="silu")
        self.proj = ConvNormAct(dim_mid, dim_out, 1)
        self.ls = LayerScale2d(dim_out, ls_value)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.eops[0](self.norm(x))
        x_local = self.conv_local(x)
        x = x + x_local if self.has_skip else x_local
        x = self.ls(self.proj(x))
        return shortcut + x if self.has_skip else x


class EMOv2(nn.Module):
    """EMOv2 image classifier; input (B, 3, H, W), output logits (B, num_classes)."""

    def __init__(
        self,
        num_classes: int = 1000,
        image_size: int = 224,
        depths: tuple[int, ...] = (2, 2, 8, 3),
        dims: tuple[int, ...] = (32, 48, 80, 180),
        exp_ratios: tuple[float, ...] = (2.0, 2.5, 3.0, 3.5),
        dim_heads: tuple[int, ...] = (16, 16, 20, 20),
        norms: tuple[str, ...] = ("bn", "bn", "ln", "ln"),
        acts: tuple[str, ...] = ("silu", "silu", "gelu", "gelu"),
        attention: tuple[bool, ...] = (False, False, True, True),
        dw_ks: int = 5,
        window_size: int = 7,
        ls_value: float = 1e-6,
    ) -> None:
        super().__init__()
        if not all(len(a) == 4 for a in (depths, dims, exp_ratios, dim_heads, norms, acts, attention)):
            raise ValueError("depths, dims, exp_ratios and dim_heads take 4 values each (one per stage); "
                             "give 4 comma-separated values, e.g. depths=3,3,9,3")
        self.num_classes, self.image_size, self.window_size = num_classes, image_size, window_size
        stem = dims[0] // 2
        self.stage0 = nn.ModuleList([
            ConvNormAct(3, stem, 3, stride=2, bias=True, norm="bn", act="silu"),
            ConvNormAct(stem, stem, 3, groups=stem, norm="bn", act="silu"),
            ConvNormAct(stem, stem, 1),
        ])
        dim_prev = stem
        for i in range(4):
            blocks = []
            for j in range(depths[i]):
                first = j == 0  # downsampling block: conv eop, no skip, doubled expansion
                blocks.append(I2RMB(
                    dim_prev, dims[i], exp_ratios[i] * 2 if first else exp_ratios[i], norms[i], acts[i], dw_ks,
                    stride=2 if first else 1, has_skip=not first, attention=attention[i] and not first,
                    dim_head=dim_heads[i], window_size=window_size, ls_value=ls_value,
                ))
                dim_prev = dims[i]
            setattr(self, f"stage{i + 1}", nn.ModuleList(blocks))
        self.num_features = dim_prev
        self.norm = _norm(norms[-1], dim_prev)
        self.head = nn.Linear(dim_prev, num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # As the official code: trunc_normal(0.02) Linear, unit/zero norms, PyTorch default convs.
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        for stage in (self.stage0, self.stage1, self.stage2, self.stage3, self.stage4):
            for blk in stage:
                x = blk(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.forward_features(x))
        return self.head(x.mean(dim=(2, 3)))


class EMOv2Video(EMOv2):
    """Per-frame EMOv2 with temporal logit averaging; input (B, 3, T, H, W), output (B, num_classes).

    Same parameters and state_dict keys as :class:`EMOv2`, so image checkpoints load directly.
    """

    def __init__(self, num_classes: int = 400, num_frames: int = 8, image_size: int = 224, **kw) -> None:
        super().__init__(num_classes=num_classes, image_size=image_size, **kw)
        self.num_frames = num_frames

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # frame index b*T + t
        return super().forward(frames).reshape(b, t, -1).mean(dim=1)


def _build(cls: type[EMOv2], name: str, num_classes: int, kw: dict) -> EMOv2:
    return cls(**{**CONFIGS[name], "num_classes": num_classes, **kw})


def emov2_1m(num_classes: int = 1000, **kw) -> EMOv2:
    """EMOv2-1M, ImageNet-1k config at 224x224 (1,460,844 params, ~0.28 GMAC)."""
    return _build(EMOv2, "emov2_1m", num_classes, kw)


def emov2_2m(num_classes: int = 1000, **kw) -> EMOv2:
    """EMOv2-2M, ImageNet-1k config at 224x224 (2,384,312 params, ~0.48 GMAC)."""
    return _build(EMOv2, "emov2_2m", num_classes, kw)


def emov2_5m(num_classes: int = 1000, **kw) -> EMOv2:
    """EMOv2-5M, ImageNet-1k config at 224x224 (5,126,440 params, ~1.03 GMAC)."""
    return _build(EMOv2, "emov2_5m", num_classes, kw)


def emov2_20m(num_classes: int = 1000, **kw) -> EMOv2:
    """EMOv2-20M, ImageNet-1k config at 224x224 (official EMO2_20M_k5_hybrid: 20,195,208 params)."""
    return _build(EMOv2, "emov2_20m", num_classes, kw)


def emov2_1m_video(num_classes: int = 400, **kw) -> EMOv2Video:
    """EMOv2-1M per frame + temporal averaging: 8 frames at 224x224, Kinetics-400 head."""
    return _build(EMOv2Video, "emov2_1m_video", num_classes, kw)


def emov2_2m_video(num_classes: int = 400, **kw) -> EMOv2Video:
    """EMOv2-2M per frame + temporal averaging: 8 frames at 224x224, Kinetics-400 head."""
    return _build(EMOv2Video, "emov2_2m_video", num_classes, kw)


def emov2_5m_video(num_classes: int = 400, **kw) -> EMOv2Video:
    """EMOv2-5M per frame + temporal averaging: 8 frames at 224x224, Kinetics-400 head."""
    return _build(EMOv2Video, "emov2_5m_video", num_classes, kw)


def emov2_20m_video(num_classes: int = 400, **kw) -> EMOv2Video:
    """EMOv2-20M per frame + temporal averaging: 8 frames at 224x224, Kinetics-400 head."""
    return _build(EMOv2Video, "emov2_20m_video", num_classes, kw)


def emov2_tiny_video(num_classes: int = 10, **kw) -> EMOv2Video:
    """Tiny EMOv2 video model for tests: 4 frames at 64x64, attention stages with window padding."""
    return _build(EMOv2Video, "emov2_tiny_video", num_classes, kw)
