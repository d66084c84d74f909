"""ViViT Factorised Encoder and its frozen-spatial-encoder + adapter variant (SFA-ViViT).

References:
    Arnab et al., "ViViT: A Video Vision Transformer", ICCV 2021, arXiv:2103.15691
    (Model 2, Factorised Encoder; official code: google-research/scenic).
    Gowda et al., "Optimizing ViViT Training: Time and Memory Reduction for Action
    Recognition", 2023, arXiv:2306.04822 (SFA-ViViT).

Factorised Encoder (FE): a clip (B, 3, T, H, W) is cut into 2x16x16 tubelets; a spatial ViT
encodes each of the T/2 temporal indices independently (CLS token, learned positional
embedding over 1 + (H/16)(W/16) tokens, pre-LN blocks, LayerNorm eps 1e-6, final norm); the
T/2 per-frame CLS outputs go to a temporal transformer with its own CLS token and learned
positions over 1 + T/2 tokens and its own final norm; its CLS feeds a Linear head.

Layout (Scenic's): both encoders end in a LayerNorm, and the temporal positional embedding
covers the temporal CLS as well. ViViT-B/16x2 FE (12 spatial + 4 temporal layers, width 768,
12 heads, MLP 3072, 32 frames at 224x224, 400 classes) then has exactly 115,062,928
parameters: 16 blocks x 7,087,872 + tubelet 1,180,416 + spatial CLS/pos 768 + 197*768 +
temporal CLS/pos 768 + 17*768 + two final norms 2*1,536 + head 307,600.

Tubelet embedding: Conv3d(3->D, (2,16,16), stride (2,16,16)) is computed as Conv2d(6->D, 16,
stride 16) over frame pairs, reached through a 6-D reshape (B,3,T,H,W) -> (B,3,T/2,2,H,W)
-> (B,T/2,3,2,H,W) -> (B*T/2, 6, H, W); Conv2d channel c*2+dt holds Conv3d weight [:, c, dt]
(``TubeletEmbed.load_conv3d``). XNNPACK rejects Conv3d and >6-D tensors; every tensor in the
exported graph has rank <= 6 (the qkv split is 5-D).

SFA-ViViT (two-stage recipe): stage 1 trains the FE on short clips; stage 2 starts from it,
freezes the spatial encoder (``freeze_spatial()``: requires_grad off, kept in eval mode and run
under ``torch.no_grad()`` so none of its activations are stored) and fine-tunes a small adapter
+ temporal encoder + head on long clips. The paper leaves the adapter loosely specified (a
module that selectively focuses on regions of each frame); ours (``FrameAdapter``):
    * frozen tokens (CLS + patches) are projected to a bottleneck r = D/4 (LayerNorm + Linear);
    * K = 4 learned queries, each offset by the frame's projected CLS (so the focus depends on
      the frame), cross-attend over that frame's patch tokens (multi-head, explicit softmax);
    * the K outputs are concatenated (K*r = D) and projected up by a zero-initialised Linear,
      added as a residual to the frozen frame CLS.
    Why: the frozen CLS was trained for short-clip classification, so re-pooling the patch
    tokens lets stage 2 pick out the regions that matter for long-range temporal reasoning,
    at ~0.7% of ViViT-B's parameters; the zero-initialised up-projection makes the adapter an
    identity at the start of stage 2 (the model equals its stage-1 FE, so fine-tuning starts
    from the stage-1 solution). Its cross-attention class is ``AdapterCrossAttention``, not
    ``Attention``, so rewrites that target timm-style self-attention leave it alone.

Deviations: no dropout / stochastic depth (add them for training at scale); timm-style init
(trunc_normal std 0.02 for Linear weights and positions, CLS ~ N(0, 1e-6), zero biases).

Tiny variants (``vivit_fe_tiny`` / ``vivit_fa_tiny``: 8 frames at 64x64, width 64, 4 heads)
exist for tests and for ``edgest train`` on the synthetic motion clips. They use 2x8x8 tubelets
(64 tokens a frame; with 16x16, only 16, the model stayed at chance) and mimetic init of the
spatial encoder's attention (``mimetic_init_``), which a from-scratch ViT needs to leave the
uniform-attention plateau in a few hundred steps rather than a few thousand.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgest_models.configs import VIVIT as CONFIGS

__all__ = [
    "Attention", "Mlp", "Block", "TubeletEmbed", "Encoder", "SpatialEncoder", "AdapterCrossAttention",
    "FrameAdapter", "ViViT", "vivit_fe_b", "vivit_fa_b", "vivit_fe_s", "vivit_fa_s", "vivit_fe_ti",
    "vivit_fa_ti", "vivit_fe_tiny", "vivit_fa_tiny", "mimetic_init_", "CONFIGS",
]

LN_EPS = 1e-6


class Attention(nn.Module):
    """timm-compatible multi-head self-attention (attributes qkv, proj, num_heads, head_dim, scale)."""

    fused_attn: bool = False  # explicit softmax(q k^T * scale) v: exports to plain MatMul/Softmax

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} does not split into {num_heads} heads; give embed_dim a multiple of num_heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = nn.Identity()
        self.k_norm = nn.Identity()
        self.attn_drop = nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            x = self.attn_drop(attn.softmax(dim=-1)) @ v
        x = x.transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2 (timm names)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(norm1(x)); x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TubeletEmbed(nn.Module):
    """Non-overlapping t x p x p tubelets -> tokens, as a Conv2d over frame groups (rank <= 6)."""

    def __init__(self, dim: int, patch_size: int = 16, tubelet: int = 2, in_chans: int = 3) -> None:
        super().__init__()
        self.patch_size, self.tubelet, self.in_chans = patch_size, tubelet, in_chans
        self.proj = nn.Conv2d(in_chans * tubelet, dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T, H, W) -> (B * T/t, (H/p)(W/p), D), frame-group-major."""
        b, c, t, h, w = x.shape
        x = x.reshape(b, c, t // self.tubelet, self.tubelet, h, w).permute(0, 2, 1, 3, 4, 5)
        x = self.proj(x.reshape(b * (t // self.tubelet), c * self.tubelet, h, w))
        return x.flatten(2).transpose(1, 2)

    @torch.no_grad()
    def load_conv3d(self, conv3d: nn.Conv3d) -> None:
        """Copy an equivalent Conv3d(C->D, (t,p,p), stride (t,p,p)): channel c*t + dt <- [:, c, dt]."""
        w = conv3d.weight
        self.proj.weight.copy_(w.reshape(w.shape[0], w.shape[1] * w.shape[2], w.shape[3], w.shape[4]))
        if conv3d.bias is not None:
            self.proj.bias.copy_(conv3d.bias)


class Encoder(nn.Module):
    """Transformer encoder over a token sequence: prepend CLS, add positions, blocks, final norm."""

    def __init__(self, dim: int, depth: int, num_heads: int, num_tokens: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def encode(self, x: Tensor) -> Tensor:
        """(N, L, D) -> (N, 1 + L, D), all tokens after the final norm (CLS first)."""
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.norm(self.blocks(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x)


class SpatialEncoder(Encoder):
    """Tubelet embedding + ViT applied to every temporal index independently."""

    def __init__(self, dim: int, depth: int, num_heads: int, image_size: int, patch_size: int, tubelet: int,
                 mlp_ratio: float = 4.0, in_chans: int = 3) -> None:
        super().__init__(dim, depth, num_heads, (image_size // patch_size) ** 2, mlp_ratio)
        self.patch_embed = TubeletEmbed(dim, patch_size, tubelet, in_chans)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T, H, W) -> (B * T/t, 1 + N, D)."""
        return self.encode(self.patch_embed(x))


class AdapterCrossAttention(nn.Module):
    """Multi-head cross-attention from (N, K, r) queries over (N, L, r) tokens (explicit softmax)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"adapter width {dim} does not split into {num_heads} heads; give adapter_heads a divisor of {dim}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.scale = self.head_dim**-0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)

    def forward(self, q: Tensor, x: Tensor) -> Tensor:
        n, k, c = q.shape
        q = self.q(q).reshape(n, k, self.num_heads, self.head_dim).transpose(1, 2)
        kv = self.kv(x).reshape(n, x.shape[1], 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        key, val = kv.unbind(0)
        attn = ((q * self.scale) @ key.transpose(-2, -1)).softmax(dim=-1)
        return (attn @ val).transpose(1, 2).reshape(n, k, c)


class FrameAdapter(nn.Module):
    """Per-frame adapter: CLS-conditioned learned queries re-pool the frozen patch tokens.

    (N, 1 + L, D) frozen spatial tokens -> (N, D) = CLS + up(cross_attn(queries + down(CLS), down(patches))).
    """

    def __init__(self, dim: int, bottleneck: int | None = None, num_queries: int = 4, num_heads: int = 4) -> None:
        super().__init__()
        r = bottleneck or max(dim // 4, num_heads)
        self.bottleneck, self.num_queries = r, num_queries
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.down = nn.Linear(dim, r)
        self.queries = nn.Parameter(torch.zeros(1, num_queries, r))
        self.attn = AdapterCrossAttention(r, num_heads)
        self.up = nn.Linear(num_queries * r, dim)  # zero-initialised: identity on the CLS at init

    def forward(self, tokens: Tensor) -> Tensor:
        z = self.down(self.norm(tokens))
        q = self.queries + z[:, :1]  # (N, K, r): learned queries offset by the frame's CLS
        out = self.attn(q, z[:, 1:]).flatten(1)  # (N, K*r)
        return tokens[:, 0] + self.up(out)


@torch.no_grad()
def mimetic_init_(attn: Attention, qk: tuple[float, float] = (0.7, 0.7), vo: tuple[float, float] = (0.4, 0.4)) -> None:
    """Mimetic init (Trockman & Kolter, ICML 2023, arXiv:2305.09828): per head W_q^T W_k ~ a Z + b I
    and for the layer W_v^T W_proj^T ~ a Z - b I (Z ~ N(0, 1/D)), via truncated SVDs, so that at
    init tokens attend to similar tokens, as in pre-trained ViTs; biases stay 0.

    ViViT applies it to the spatial encoder only: in the temporal encoder (T/t frame tokens + CLS)
    the identity term let the CLS attend to itself (weight 0.94 after 64 training steps, 0.98 after 256), so
    the output stopped depending on the clip and training collapsed at chance."""
    d, h, hd = attn.qkv.in_features, attn.num_heads, attn.head_dim
    eye = torch.eye(d)
    w = attn.qkv.weight  # rows: q (heads x head_dim), k, v
    for i in range(h):
        u, s, vt = torch.linalg.svd(qk[0] * torch.randn(d, d) / d**0.5 + qk[1] * eye)
        w[i * hd:(i + 1) * hd] = (u[:, :hd] * s[:hd].sqrt()).T
        w[d + i * hd:d + (i + 1) * hd] = s[:hd].sqrt()[:, None] * vt[:hd]
    u, s, vt = torch.linalg.svd(vo[0] * torch.randn(d, d) / d**0.5 - vo[1] * eye)
    w[2 * d:] = (u * s.sqrt()).T
    attn.proj.weight.copy_(vt.T * s.sqrt())


class ViViT(nn.Module):
    """ViViT Factorised Encoder, optionally with a frame adapter; input (B, 3, T, H, W) -> (B, num_classes)."""

    def __init__(
        self,
        num_classes: int = 400,
        num_frames: int = 32,
        image_size: int = 224,
        patch_size: int = 16,
        tubelet: int = 2,
        embed_dim: int = 768,
        depth: int = 12,
        temporal_depth: int = 4,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        adapter: bool = False,
        adapter_queries: int = 4,
        adapter_bottleneck: int | None = None,
        adapter_heads: int = 4,
        in_chans: int = 3,
        mimetic_init: bool = False,
    ) -> None:
        super().__init__()
        if num_frames % tubelet or image_size % patch_size:
            raise ValueError(f"{num_frames} frames at {image_size}x{image_size} do not split into {tubelet}x{patch_size}x"
                             f"{patch_size} tubelets; give num_frames a multiple of {tubelet} and image_size a multiple "
                             f"of {patch_size}")
        self.num_classes, self.num_frames, self.image_size = num_classes, num_frames, image_size
        self.num_features = embed_dim
        self.spatial = SpatialEncoder(embed_dim, depth, num_heads, image_size, patch_size, tubelet, mlp_ratio, in_chans)
        self.adapter = FrameAdapter(embed_dim, adapter_bottleneck, adapter_queries, adapter_heads) if adapter else None
        self.temporal = Encoder(embed_dim, temporal_depth, num_heads, num_frames // tubelet, mlp_ratio)
        self.head = nn.Linear(embed_dim, num_classes)
        self.spatial_frozen = False
        self._init_weights()
        if mimetic_init:  # spatial encoder only: see mimetic_init_
            for m in self.spatial.modules():
                if isinstance(m, Attention):
                    mimetic_init_(m)

    def _init_weights(self) -> None:
        # Deterministic given torch's global RNG (module construction order is fixed).
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, Encoder):
                nn.init.trunc_normal_(m.pos_embed, std=0.02)
                nn.init.normal_(m.cls_token, std=1e-6)
        if self.adapter is not None:
            nn.init.trunc_normal_(self.adapter.queries, std=0.02)
            nn.init.zeros_(self.adapter.up.weight)
            nn.init.zeros_(self.adapter.up.bias)

    def freeze_spatial(self) -> ViViT:
        """Stage 2: spatial encoder frozen (no grads, eval mode, run under no_grad); the rest trains."""
        self.spatial.requires_grad_(False)
        self.spatial.eval()
        self.spatial_frozen = True
        return self

    def train(self, mode: bool = True) -> ViViT:
        super().train(mode)
        if self.spatial_frozen:
            self.spatial.eval()
        return self

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, T, H, W) -> temporal CLS feature (B, D)."""
        b, nt = x.shape[0], x.shape[2] // self.spatial.patch_embed.tubelet
        frozen = self.spatial_frozen and self.training and torch.is_grad_enabled()
        with torch.no_grad() if frozen else nullcontext():
            tokens = self.spatial(x)  # (B * T/t, 1 + N, D)
        frames = tokens[:, 0] if self.adapter is None else self.adapter(tokens)
        return self.temporal(frames.reshape(b, nt, -1))[:, 0]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))


def _build(name: str, num_classes: int, kw: dict) -> ViViT:
    return ViViT(**{**CONFIGS[name], "num_classes": num_classes, **kw})


def vivit_fe_b(num_classes: int = 400, **kw) -> ViViT:
    """ViViT-B/16x2 Factorised Encoder (12+4 layers, width 768), 32 frames at 224x224: 115,062,928 params."""
    return _build("vivit_fe_b", num_classes, kw)


def vivit_fa_b(num_classes: int = 400, **kw) -> ViViT:
    """ViViT-B/16x2 FE with the frame adapter (SFA-ViViT stage 2), 32 frames at 224x224."""
    return _build("vivit_fa_b", num_classes, kw)


def vivit_fe_s(num_classes: int = 400, **kw) -> ViViT:
    """ViViT-S/16x2 FE (ViT-S spatial, width 384, 6 heads, 12+4 layers), 16 frames at 224x224."""
    return _build("vivit_fe_s", num_classes, kw)


def vivit_fa_s(num_classes: int = 400, **kw) -> ViViT:
    """ViViT-S/16x2 FE with the frame adapter, 16 frames at 224x224."""
    return _build("vivit_fa_s", num_classes, kw)


def vivit_fe_ti(num_classes: int = 400, **kw) -> ViViT:
    """ViViT-Ti/16x2 FE (ViT-Ti spatial, width 192, 3 heads, 12+2 layers), 16 frames at 224x224."""
    return _build("vivit_fe_ti", num_classes, kw)


def vivit_fa_ti(num_classes: int = 400, **kw) -> ViViT:
    """ViViT-Ti/16x2 FE with the frame adapter, 16 frames at 224x224."""
    return _build("vivit_fa_ti", num_classes, kw)


def vivit_fe_tiny(num_classes: int = 10, **kw) -> ViViT:
    """Tiny FE for tests: 8 frames at 64x64, 2x8x8 tubelets, width 64, 2 heads, 2+1 layers: 180,106 params."""
    return _build("vivit_fe_tiny", num_classes, kw)


def vivit_fa_tiny(num_classes: int = 10, **kw) -> ViViT:
    """Tiny frozen-adapter ViViT for tests: 8 frames at 64x64, 2x8x8 tubelets, width 64, 2 heads, 2+1 layers."""
    return _build("vivit_fa_tiny", num_classes, kw)
