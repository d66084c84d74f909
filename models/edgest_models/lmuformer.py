"""LMUFormer: a Legendre-Memory-Unit sequence classifier with a convolutional patch embedding.

Reference:
    Liu, Datta, Li, Beerel, "LMUFormer: Low Complexity Yet Powerful Spiking Model With
    Legendre Memory Units", ICLR 2024, arXiv:2402.04882 (official code: zeyuliu1037/LMUFormer).

Input (B, L, F), layout "B,L,C" (Speech Commands: 128 steps x 128 features). Faithful to the
official ``lmu_rnn_conv1d`` (``lmuformer``, 1,621,796 params) and ``slmu_rnn_ms_conv1d``
(``lmuformer_spiking``, 1,689,894 params):
    * patch embedding: 4 x Conv1d(k3, p1, no bias), then x + rpe_conv(x). Non-spiking: conv ->
      ReLU -> BN. Spiking ("Ms"): conv -> BN -> LIF between convs; rpe_conv sees LIF(BN(x));
    * one block, no LayerNorm: x += mixer(x) (LMU cell -> Conv1d 1x1 -> BN; spiking: BN -> LIF
      with v_th 0.5 in front, BN -> LIF on u, m and h, memory 2*dim), x += ConvFFN(x) (1x1 -> BN
      -> GELU -> 1x1 -> BN -> ReLU; spiking: BN -> LIF -> 1x1 -> BN -> LIF -> 1x1);
    * head: Linear on every step (spiking: BN -> LIF first), logits averaged over the steps.
LMU memory (order d, theta = L, dt 1, zero-order hold) runs as a real causal Conv1d over the
flipped impulse response H[:, t] = A^t B (no FFT/complex tensors); its recurrent form drives
streaming. LIF: tau 2, v_th 1, hard reset to 0 (detached), time axis = sequence axis, sigmoid
surrogate (alpha 4) in training mode only; no neuron state is kept in module attributes.

Streaming: ``model.step_module()`` maps (x_t, *state) -> (logits_t, *state); logits_t is the mean
of the per-step logits over steps 0..t (the official "all_seq" mode). The paper's embedding is
non-causal (5 stacked k3 convs look 5 steps ahead), so for the sequence models x_t is one
embedded step ``model.embed(x)[:, :, t]`` and only the part after the embedding streams exactly.
``lmuformer_video`` (edgest's adaptation, not the paper's) embeds each frame with a per-frame
2D conv stem that keeps a coarse map of where things are, followed by the paper's RPE conv made
causal (``CausalRPE``), so it is causal end to end; its step module takes raw frames (B, 3, H, W)
and carries the RPE conv's last two inputs as state.
Deviations: no dropout/DropPath (0 in the official config); LMU buffers are non-persistent; the
spiking recurrent form applies BN -> LIF to m like the parallel one (the official one skips it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgest_models.configs import LMUFORMER as CONFIGS

__all__ = [
    "lmu_matrices", "zoh", "LIF", "LMUMemory", "LMUCell", "LMUFormer", "LMUFormerVideo", "LMUFormerStep",
    "lmuformer", "lmuformer_spiking", "lmuformer_tiny", "lmuformer_spiking_tiny", "lmuformer_video",
    "lmuformer_video_tiny", "CONFIGS",
]


def lmu_matrices(memory_size: int, theta: float) -> tuple[Tensor, Tensor]:
    """Continuous LMU (A, B), float64: A_ij = R_i (-1 if i<j else (-1)^(i-j+1)), B_i = R_i (-1)^i."""
    q = torch.arange(memory_size, dtype=torch.int64, device="cpu")
    r = ((2 * q + 1) / theta).to(torch.float64)
    i, j = q[:, None], q[None, :]
    sign = torch.where(i < j, -1.0, 1.0 - 2.0 * ((i - j + 1) % 2)).to(torch.float64)
    return r[:, None] * sign, (r * (1.0 - 2.0 * (q % 2)))[:, None]


def zoh(a: Tensor, b: Tensor, dt: float = 1.0) -> tuple[Tensor, Tensor]:
    """Zero-order hold: (expm(A dt), A^-1 (expm(A dt) - I) B), via one block matrix exponential."""
    d = a.shape[0]
    m = torch.zeros(d + 1, d + 1, dtype=torch.float64, device="cpu")
    m[:d, :d], m[:d, d:] = a * dt, b * dt
    e = torch.linalg.matrix_exp(m)
    return e[:d, :d], e[:d, d:]


class LIF(nn.Module):
    """Multi-step LIF (spikingjelly MultiStepLIFNode defaults): h = v + (x - v)/tau, s = [h >= v_th]."""

    def __init__(self, channels: int, tau: float = 2.0, v_threshold: float = 1.0, alpha: float = 4.0) -> None:
        super().__init__()
        self.channels, self.tau, self.v_threshold, self.alpha = channels, tau, v_threshold, alpha
        self.state_key = ""  # set by LMUFormer: this module's name, keys its streaming state

    def _spike(self, h: Tensor) -> Tensor:
        s = (h >= self.v_threshold).to(h.dtype)
        if self.training:  # sigmoid surrogate gradient; the forward value stays the exact step
            sg = torch.sigmoid(self.alpha * (h - self.v_threshold))
            s = s + (sg - sg.detach())
        return s

    def forward(self, x: Tensor, dim: int = -1) -> Tensor:
        """Spikes over time axis ``dim`` from v = 0. h = v + (x - v)/tau is computed as x/tau + (1 - 1/tau) v
        on negated values, so a step is two graph ops: g = -h, w = -v, w <- threshold(g, -v_th, 0)."""
        w, gs = torch.zeros_like(x.narrow(dim, 0, 1)), []
        for g_in in (x / -self.tau).split(1, dim):  # one Split node; steps keep a size-1 time axis
            g = g_in.add(w, alpha=1.0 - 1.0 / self.tau)
            gs.append(g)
            w = F.threshold(g, -self.v_threshold, 0.0)
        return self._spike(-torch.cat(gs, dim))

    def init_state(self, batch: int) -> Tensor:
        return torch.zeros(batch, self.channels)

    def step(self, x: Tensor, st: dict) -> Tensor:
        """One step (B, C); the membrane lives in ``st[self.state_key]``."""
        h = (x / self.tau).add(st[self.state_key], alpha=1.0 - 1.0 / self.tau)
        st[self.state_key] = torch.where(h >= self.v_threshold, 0.0, h)
        return self._spike(h)


def _step(act: nn.Module, x: Tensor, st: dict) -> Tensor:
    return act.step(x, st) if isinstance(act, LIF) else act(x)


def _pw(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """A 1x1 Conv1d applied to one step (B, C)."""
    return conv(x.unsqueeze(-1)).squeeze(-1)


class LMUMemory(nn.Module):
    """LMU memory m_t = A m_{t-1} + B u_t (ZOH, dt 1), parallel as a causal real Conv1d."""

    def __init__(self, memory_size: int, theta: int) -> None:
        super().__init__()
        self.memory_size, self.theta, self.state_key = memory_size, theta, ""
        a, b = zoh(*lmu_matrices(memory_size, theta))
        h = [b[:, 0]]
        for _ in range(theta - 1):
            h.append(a @ h[-1])
        kernel = torch.stack(h, -1).flip(-1).unsqueeze(1)  # (d, 1, theta): tap k holds H[:, theta-1-k]
        dev = torch.empty(0).device  # built on the CPU in float64, kept on the default device (meta in model_stats)
        for name, t in (("A", a), ("B", b), ("kernel", kernel)):
            self.register_buffer(name, t.to(dev, torch.float32), persistent=False)

    def forward(self, u: Tensor) -> Tensor:
        """u (B, 1, L) -> m (B, d, L), m[:, :, t] = sum_s H[:, s] u[t - s], L <= theta."""
        n = u.shape[-1]
        if n > self.theta:
            raise ValueError(f"sequence length {n} exceeds the LMU window theta={self.theta}")
        return F.conv1d(F.pad(u, (n - 1, 0)), self.kernel[..., self.theta - n :])

    def init_state(self, batch: int) -> Tensor:
        return torch.zeros(batch, self.memory_size)

    def step(self, u: Tensor, st: dict) -> Tensor:
        """u (B, 1) -> m (B, d); the memory lives in ``st[self.state_key]``."""
        m = st[self.state_key] = st[self.state_key] @ self.A.T + u @ self.B.T
        return m


class LMUCell(nn.Module):
    """LMU cell: u = f(W_u x), m = LMU(u), h = f(W_h [m; x]); spiking: f = LIF(BN(.)), m spiked too."""

    def __init__(self, input_size: int, hidden_size: int, memory_size: int, theta: int, spiking: bool = False) -> None:
        super().__init__()
        self.W_u = nn.Linear(input_size, 1)
        self.W_h = nn.Linear(memory_size + input_size, hidden_size)
        self.memory = LMUMemory(memory_size, theta)
        if spiking:
            self.bn_u, self.bn_m, self.bn_h = (nn.BatchNorm1d(c) for c in (1, memory_size, hidden_size))
            self.f_u, self.f_m, self.f_h = LIF(1), LIF(memory_size), LIF(hidden_size)
        else:
            self.bn_u = self.bn_m = self.bn_h = self.f_m = nn.Identity()
            self.f_u, self.f_h = nn.ReLU(), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, L) -> h (B, hidden, L)."""
        u = self.f_u(self.bn_u(self.W_u(x.transpose(1, 2)).transpose(1, 2)))
        m = self.f_m(self.bn_m(self.memory(u)))
        return self.f_h(self.bn_h(self.W_h(torch.cat([m, x], 1).transpose(1, 2)).transpose(1, 2)))

    def step(self, x: Tensor, st: dict) -> Tensor:
        u = _step(self.f_u, self.bn_u(self.W_u(x)), st)
        m = _step(self.f_m, self.bn_m(self.memory.step(u, st)), st)  # the state is m before BN/LIF
        return _step(self.f_h, self.bn_h(self.W_h(torch.cat([m, x], 1))), st)


class ConvEmbed(nn.Module):
    """Conv1d patch embedding (official Tokenizer / spiking Conv1d4EBMs): (B, L, F) -> (B, dim, L)."""

    def __init__(self, in_features: int, dim: int, layers: int = 4, spiking: bool = False) -> None:
        super().__init__()
        chans = [in_features] + [dim] * layers
        self.spiking = spiking
        self.convs = nn.ModuleList(nn.Conv1d(chans[i], chans[i + 1], 3, padding=1, bias=False) for i in range(layers))
        self.bns = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(layers))
        self.acts = nn.ModuleList((LIF(dim) if spiking else nn.ReLU()) for _ in range(layers))
        self.rpe_conv = nn.Conv1d(dim, dim, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = x.transpose(1, 2)
        if not self.spiking:
            for conv, act, bn in zip(self.convs, self.acts, self.bns):
                x = bn(act(conv(x)))
            return x + self.rpe_conv(x)
        for i, conv in enumerate(self.convs):
            x = conv(x if i == 0 else self.acts[i - 1](self.bns[i - 1](x)))
        return x + self.rpe_conv(self.acts[-1](self.bns[-1](x)))


class LMUMixer(nn.Module):
    """Token mixer: [BN -> LIF(v_th 0.5)] -> LMU cell -> Conv1d 1x1 -> BN (official LMU / SLMUMs)."""

    def __init__(self, dim: int, memory_size: int, theta: int, spiking: bool = False) -> None:
        super().__init__()
        self.prev_bn = nn.BatchNorm1d(dim) if spiking else nn.Identity()
        self.prev_lif = LIF(dim, v_threshold=0.5) if spiking else nn.Identity()
        self.lmu = LMUCell(dim, dim, memory_size, theta, spiking)
        self.proj_conv = nn.Conv1d(dim, dim, 1)
        self.proj_bn = nn.BatchNorm1d(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_bn(self.proj_conv(self.lmu(self.prev_lif(self.prev_bn(x)))))

    def step(self, x: Tensor, st: dict) -> Tensor:
        h = self.lmu.step(_step(self.prev_lif, self.prev_bn(x), st), st)
        return self.proj_bn(_pw(self.proj_conv, h))


class ConvFFN(nn.Module):
    """1x1 -> BN -> GELU -> 1x1 -> BN -> ReLU; spiking (ConvFFNMs): BN -> LIF -> 1x1 -> BN -> LIF -> 1x1."""

    def __init__(self, dim: int, hidden: int, spiking: bool = False) -> None:
        super().__init__()
        self.spiking = spiking
        self.fc1_conv, self.fc2_conv = nn.Conv1d(dim, hidden, 1), nn.Conv1d(hidden, dim, 1)
        if spiking:
            self.fc1_bn, self.fc2_bn = nn.BatchNorm1d(dim), nn.BatchNorm1d(hidden)
            self.fc1_act, self.fc2_act = LIF(dim), LIF(hidden)
        else:
            self.fc1_bn, self.fc2_bn = nn.BatchNorm1d(hidden), nn.BatchNorm1d(dim)
            self.fc1_act, self.fc2_act = nn.GELU(), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        if self.spiking:
            x = self.fc1_conv(self.fc1_act(self.fc1_bn(x)))
            return self.fc2_conv(self.fc2_act(self.fc2_bn(x)))
        x = self.fc1_act(self.fc1_bn(self.fc1_conv(x)))
        return self.fc2_act(self.fc2_bn(self.fc2_conv(x)))

    def step(self, x: Tensor, st: dict) -> Tensor:
        if self.spiking:
            x = _pw(self.fc1_conv, _step(self.fc1_act, self.fc1_bn(x), st))
            return _pw(self.fc2_conv, _step(self.fc2_act, self.fc2_bn(x), st))
        x = self.fc1_act(self.fc1_bn(_pw(self.fc1_conv, x)))
        return self.fc2_act(self.fc2_bn(_pw(self.fc2_conv, x)))


class Block(nn.Module):
    """x += mixer(x); x += ffn(x) (no norm layers, DropPath 0 as in the official code)."""

    def __init__(self, dim: int, memory_size: int, theta: int, mlp_ratio: float, spiking: bool) -> None:
        super().__init__()
        self.attn = LMUMixer(dim, memory_size, theta, spiking)
        self.mlp = ConvFFN(dim, int(dim * mlp_ratio), spiking)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)

    def step(self, x: Tensor, st: dict) -> Tensor:
        x = x + self.attn.step(x, st)
        return x + self.mlp.step(x, st)


class LMUFormer(nn.Module):
    """LMUFormer sequence classifier; input (B, seq_len, in_features), output logits (B, num_classes)."""

    def __init__(
        self,
        num_classes: int = 35,
        seq_len: int = 128,
        in_features: int = 128,
        dim: int = 256,
        depth: int = 1,
        memory_size: int | None = None,
        mlp_ratio: float = 4.0,
        embed_layers: int = 4,
        spiking: bool = False,
        patch_embed: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.num_classes, self.seq_len, self.in_features, self.dim = num_classes, seq_len, in_features, dim
        self.spiking = spiking
        self.memory_size = memory_size or (2 * dim if spiking else dim)
        if patch_embed is None:
            patch_embed = ConvEmbed(in_features, dim, embed_layers, spiking)
        self.patch_embed = patch_embed
        self.blocks = nn.ModuleList(Block(dim, self.memory_size, seq_len, mlp_ratio, spiking) for _ in range(depth))
        self.head_bn = nn.BatchNorm1d(dim) if spiking else nn.Identity()
        self.head_lif = LIF(dim) if spiking else nn.Identity()
        self.head = nn.Linear(dim, num_classes)
        # streaming state: every LMU memory / LIF after the embedding (which the step module does not run)
        self.state_keys = [
            n for n, m in self.named_modules() if isinstance(m, (LIF, LMUMemory)) and not n.startswith("patch_embed.")
        ]
        for n in self.state_keys:
            self.get_submodule(n).state_key = n
        self._init_weights()

    def _init_weights(self) -> None:
        # Official init: Linear trunc_normal(std .02), bias 0; convs and BN keep PyTorch defaults.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def embed(self, x: Tensor) -> Tensor:
        """Input -> embedded sequence (B, dim, L)."""
        return self.patch_embed(x)

    def embed_step(self, x: Tensor, st: dict) -> Tensor:
        """One streaming input -> one embedded step (B, dim); here x already is one (the embedding is non-causal)."""
        return x

    def forward_steps(self, e: Tensor) -> Tensor:
        """Embedded sequence (B, dim, L) -> per-step logits (B, L, num_classes)."""
        for blk in self.blocks:
            e = blk(e)
        return self.head(self.head_lif(self.head_bn(e)).transpose(1, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_steps(self.embed(x)).mean(1)

    def step(self, e: Tensor, st: dict) -> Tensor:
        """One embedded step (B, dim) -> this step's logits (B, num_classes)."""
        for blk in self.blocks:
            e = blk.step(e, st)
        return self.head(_step(self.head_lif, self.head_bn(e), st))

    def step_module(self) -> LMUFormerStep:
        return LMUFormerStep(self)


def frame_stem(widths: tuple[int, ...], grid: int = 1) -> nn.Sequential:
    """Per-frame 2D stem: [Conv3x3/s2 (no bias) -> BN -> ReLU] per width, average pool to a grid x
    grid map, then (grid > 1) a grid x grid Conv (a Linear over the flattened map, no bias) -> BN ->
    ReLU back to widths[-1] features: unlike a global pool, it keeps where things are."""
    chans, layers = (3, *widths), []
    for cin, cout in zip(chans[:-1], chans[1:]):
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    layers.append(nn.AdaptiveAvgPool2d(grid))
    if grid > 1:
        dim = widths[-1]
        layers += [nn.Conv2d(dim, dim, grid, bias=False), nn.BatchNorm2d(dim), nn.ReLU()]
    return nn.Sequential(*layers, nn.Flatten(1))


class CausalRPE(nn.Module):
    """The paper's ``x + rpe_conv(x)`` (Conv1d k3 over steps, no bias), made causal: step t sees
    steps t-k+1..t (zero history at the start). Streaming keeps the last k-1 inputs (B, dim, k-1)."""

    def __init__(self, dim: int, kernel: int = 3) -> None:
        super().__init__()
        self.dim, self.kernel, self.state_key = dim, kernel, ""
        self.conv = nn.Conv1d(dim, dim, kernel, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, dim, L) -> (B, dim, L)."""
        return x + self.conv(F.pad(x, (self.kernel - 1, 0)))

    def init_state(self, batch: int) -> Tensor:
        return torch.zeros(batch, self.dim, self.kernel - 1)

    def step(self, x: Tensor, st: dict) -> Tensor:
        """One step (B, dim); the last k-1 inputs live in ``st[self.state_key]``."""
        window = torch.cat([st[self.state_key], x.unsqueeze(-1)], -1)
        st[self.state_key] = window[..., 1:]
        return x + self.conv(window).squeeze(-1)


class LMUFormerVideo(LMUFormer):
    """edgest's video adaptation (not in the paper): a per-frame conv stem + causal RPE conv feed the blocks.

    Input (B, 3, num_frames, H, W); each frame becomes one step (theta = num_frames). The stem
    (:func:`frame_stem`) replaces the Conv1d patch embedding and keeps a ``stem_grid`` x
    ``stem_grid`` map of where things are; the paper's RPE conv follows, made causal
    (:class:`CausalRPE`), so the whole model is causal over frames.
    Why both: the LMU cell carries one scalar u per step through time, so a model with a
    globally pooled stem and no temporal conv could not tell motion directions apart (30.5% on
    the synthetic set); keeping position and comparing each frame with the two before it lets
    the blocks see motion directly (see ``edgest_models.train`` for the measured figures).
    """

    def __init__(
        self,
        num_classes: int = 400,
        num_frames: int = 16,
        image_size: int = 112,
        stem_widths: tuple[int, ...] = (32, 64, 128, 256, 256),
        stem_grid: int = 2,
        rpe_kernel: int = 3,
        **kw,
    ) -> None:
        dim = stem_widths[-1]
        super().__init__(num_classes, num_frames, dim, dim, patch_embed=frame_stem(stem_widths, stem_grid), **kw)
        self.num_frames, self.image_size = num_frames, image_size
        self.rpe = CausalRPE(dim, rpe_kernel)
        self.rpe.state_key = "rpe"
        self.state_keys = ["rpe", *self.state_keys]  # streaming state: the RPE window first, as it runs first

    def embed(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        f = self.patch_embed(x.transpose(1, 2).reshape(b * t, c, h, w))
        return self.rpe(f.reshape(b, t, -1).transpose(1, 2))

    def embed_step(self, x: Tensor, st: dict) -> Tensor:
        """One frame (B, 3, H, W) -> (B, dim)."""
        return self.rpe.step(self.patch_embed(x), st)


class LMUFormerStep(nn.Module):
    """Streaming wrapper (eval mode): forward(x_t, *state) -> (logits_t, *new_state).

    x_t: one embedded step (B, dim) for the sequence models, one frame (B, 3, H, W) for the video
    model. state: the flat tuple from ``init_state(batch)``: one tensor per stateful module in
    ``model.state_keys`` order (video RPE window (B, dim, k-1), LMU memory (B, d), LIF membrane
    (B, C)), then the running logit sum (B, K) and the step count (1,). logits_t is the mean of
    the per-step logits so far.
    """

    #: seconds of signal one step covers (edgest's streaming latency states its real-time factor at this
    #: hop): 10 ms, the usual speech-feature hop, for the sequence models; 40 ms (25 fps) for video
    step_seconds: float

    def __init__(self, model: LMUFormer) -> None:
        super().__init__()
        self.model = model
        video = isinstance(model, LMUFormerVideo)
        self.step_seconds = 0.04 if video else 0.01
        self.step_input = ("one RGB frame (B, 3, H, W), preprocessed as the whole-clip model's input" if video else
                           "one embedded step model.embed(x)[:, :, t] (B, dim): the paper's Conv1d embedding looks "
                           "5 steps ahead, so it runs before the stream")
        self.output = "logits_t: the mean of the per-step logits over steps 0..t (the official all_seq mode)"

    @property
    def state_names(self) -> tuple[str, ...]:
        """One stable name per state tensor, in ``init_state`` order (module paths, dots as underscores)."""
        return (*(k.replace(".", "_") for k in self.model.state_keys), "logit_sum", "step_count")

    @property
    def state_descriptions(self) -> tuple[str, ...]:
        """What each state tensor holds, in ``state_names`` order."""
        what = {CausalRPE: "the causal RPE conv's last k-1 inputs (B, dim, k-1)", LMUMemory: "LMU memory m_t (B, d)",
                LIF: "LIF membrane potential after reset (B, C)"}
        mods = (self.model.get_submodule(k) for k in self.model.state_keys)
        return (*(what[type(m)] for m in mods), "running sum of the per-step logits (B, K)", "steps seen so far (1,)")

    def steps(self, x: Tensor) -> Tensor:
        """A whole input -> the step inputs it streams as, step axis first: (L, B, dim) or (T, B, 3, H, W)."""
        if isinstance(self.model, LMUFormerVideo):
            return x.permute(2, 0, 1, 3, 4)
        return self.model.embed(x).permute(2, 0, 1)

    def reference(self, x: Tensor) -> Tensor:
        """What logits_t equals, from the parallel model: per-step cumulative mean logits (B, L, num_classes)."""
        per_step = self.model.forward_steps(self.model.embed(x))
        count = torch.arange(1, per_step.shape[1] + 1, dtype=per_step.dtype).view(1, -1, 1)
        return per_step.cumsum(1) / count

    def init_state(self, batch: int = 1) -> tuple[Tensor, ...]:
        zeros = [self.model.get_submodule(n).init_state(batch) for n in self.model.state_keys]
        return (*zeros, torch.zeros(batch, self.model.num_classes), torch.zeros(1))

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        keys = self.model.state_keys
        if len(state) != len(keys) + 2:
            raise ValueError(f"expected {len(keys) + 2} state tensors, got {len(state)}")
        st = dict(zip(keys, state))
        logits = self.model.step(self.model.embed_step(x, st), st)
        total, count = state[-2] + logits, state[-1] + 1.0
        return (total / count, *(st[k] for k in keys), total, count)


def lmuformer(num_classes: int = 35, **kw) -> LMUFormer:
    """LMUFormer (non-spiking), Speech Commands V2 config: 128 steps x 128 features, 35 classes."""
    return LMUFormer(**{**CONFIGS["lmuformer"], "num_classes": num_classes, **kw})


def lmuformer_spiking(num_classes: int = 35, **kw) -> LMUFormer:
    """Spiking LMUFormer (official slmu_rnn_ms_conv1d), Speech Commands V2 config, memory 2*dim."""
    return LMUFormer(**{**CONFIGS["lmuformer_spiking"], "num_classes": num_classes, **kw})


def lmuformer_tiny(num_classes: int = 10, **kw) -> LMUFormer:
    """Tiny LMUFormer for tests: 16 steps x 16 features, dim 32."""
    return LMUFormer(**{**CONFIGS["lmuformer_tiny"], "num_classes": num_classes, **kw})


def lmuformer_spiking_tiny(num_classes: int = 10, **kw) -> LMUFormer:
    """Tiny spiking LMUFormer for tests: 8 steps x 16 features, dim 32, memory 64."""
    return LMUFormer(**{**CONFIGS["lmuformer_spiking_tiny"], "num_classes": num_classes, **kw})


def lmuformer_video(num_classes: int = 400, **kw) -> LMUFormerVideo:
    """Video LMUFormer (edgest adaptation): per-frame conv stem + LMUFormer block, 16 frames at 112x112."""
    return LMUFormerVideo(**{**CONFIGS["lmuformer_video"], "num_classes": num_classes, **kw})


def lmuformer_video_tiny(num_classes: int = 10, **kw) -> LMUFormerVideo:
    """Tiny video LMUFormer for tests: 8 frames at 64x64, dim 32, 10 classes."""
    return LMUFormerVideo(**{**CONFIGS["lmuformer_video_tiny"], "num_classes": num_classes, **kw})
