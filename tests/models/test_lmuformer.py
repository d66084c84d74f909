"""Acceptance tests for edgest_models.lmuformer (numbers from the LMUFormer paper/official code)."""

from __future__ import annotations

import pytest
import torch

import edgest
from edgest.testing.weights import calibrate_bns
from edgest_models import lmuformer as lm
from edgest_models.lmuformer import CONFIGS, LIF, LMUFormer, LMUMemory, lmu_matrices, zoh

SEQ = ("lmuformer", "lmuformer_spiking", "lmuformer_tiny", "lmuformer_spiking_tiny")
VIDEO = ("lmuformer_video", "lmuformer_video_tiny")
TINY = ("lmuformer_tiny", "lmuformer_spiking_tiny", "lmuformer_video_tiny")


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _input(name: str, batch: int = 1) -> torch.Tensor:
    cfg = CONFIGS[name]
    if name in VIDEO:
        return torch.randn(batch, 3, cfg["num_frames"], cfg["image_size"], cfg["image_size"])
    return torch.randn(batch, cfg["seq_len"], cfg["in_features"])


def _build(name: str, calibrate: bool = True) -> LMUFormer:
    """Deterministic eval-mode model. ``calibrate`` stands in for training: random BN affines and
    BN statistics measured on random inputs, so that spiking models spike at a healthy rate (at
    the official init the eval BNs are identities and the tiny spiking model never fires)."""
    torch.manual_seed(0)
    m = getattr(lm, name)()
    return calibrate_bns(m, lambda: _input(name, batch=4)) if calibrate else m.eval()


# --- sizes and configs --------------------------------------------------------------------------


def test_param_counts() -> None:
    assert _n_params(lm.lmuformer()) == 1_621_796
    assert _n_params(lm.lmuformer_spiking()) == 1_689_894
    # edgest's video variant, tiny: stem convs 3x3 3->8->16->32 (+ BNs), 4x4 grid conv 32->32 (+ BN),
    # causal RPE conv k3, one LMUFormer block at dim 32 (11,905), head 32->10
    stem = 9 * (3 * 8 + 8 * 16 + 16 * 32) + 2 * (8 + 16 + 32) + 16 * 32 * 32 + 2 * 32
    assert _n_params(lm.lmuformer_video_tiny()) == stem + 3 * 32 * 32 + 11_905 + 330 == 37_843


def test_configs_describe_input_shapes() -> None:
    assert set(CONFIGS) == set(SEQ) | set(VIDEO)
    for name, cfg in CONFIGS.items():
        keys = {"num_frames", "image_size"} if name in VIDEO else {"seq_len", "in_features"}
        assert keys | {"num_classes"} <= cfg.keys()
        m = getattr(lm, name)()
        assert m.num_classes == cfg["num_classes"]
        assert m.seq_len == cfg.get("seq_len", cfg.get("num_frames"))
    assert lm.lmuformer_spiking().memory_size == 512 and lm.lmuformer().memory_size == 256
    assert all(_n_params(getattr(lm, n)()) < 100_000 for n in TINY)


def test_meta_device_build() -> None:
    # edgest's model_stats builds on the meta device: the LMU buffers must follow it.
    with torch.device("meta"):
        m = lm.lmuformer_spiking_tiny()
        y = m(torch.zeros(1, CONFIGS["lmuformer_spiking_tiny"]["seq_len"], 16))
    assert y.shape == (1, 10) and y.device.type == "meta"


# --- LMU memory ---------------------------------------------------------------------------------


def test_lmu_matrices_match_formulas() -> None:
    d, theta = 6, 9.0
    a, b = lmu_matrices(d, theta)
    for i in range(d):
        r = (2 * i + 1) / theta
        assert b[i, 0].item() == pytest.approx(r * (-1) ** i)
        for j in range(d):
            assert a[i, j].item() == pytest.approx(r * (-1 if i < j else (-1) ** (i - j + 1)))
    ad, bd = zoh(a, b)
    linalg = pytest.importorskip("scipy.linalg")
    an, bn = a.numpy(), b.numpy()
    assert torch.allclose(ad, torch.from_numpy(linalg.expm(an)), atol=1e-12)
    ref_b = torch.linalg.solve(a, (ad - torch.eye(d, dtype=torch.float64)) @ b)  # A^-1 (A_d - I) B
    assert torch.allclose(bd, ref_b, atol=1e-10)
    signal = pytest.importorskip("scipy.signal")
    sa, sb, *_ = signal.cont2discrete((an, bn, bn.T, 0.0), dt=1.0, method="zoh")
    assert torch.allclose(ad, torch.from_numpy(sa), atol=1e-12) and torch.allclose(bd, torch.from_numpy(sb), atol=1e-12)


@pytest.mark.parametrize(("d", "theta", "n"), [(8, 16, 16), (8, 16, 11), (256, 128, 128), (512, 128, 128)])
def test_parallel_memory_matches_recurrent(d: int, theta: int, n: int) -> None:
    mem = LMUMemory(d, theta)
    u = torch.rand(2, 1, n, generator=torch.Generator().manual_seed(0))
    par = mem(u)
    st, rec = {mem.state_key: mem.init_state(2)}, []
    for t in range(n):
        rec.append(mem.step(u[:, :, t], st))  # m_t = A m_{t-1} + B u_t
    assert torch.allclose(par, torch.stack(rec, -1), atol=1e-5)
    assert not any(p.is_complex() for p in mem.buffers())


def test_lif_dynamics_and_surrogate() -> None:
    lif = LIF(1)
    x = torch.full((1, 1, 6), 1.5)
    # h: 0.75, 1.125 (fire, reset to 0), 0.75, 1.125, ... (tau 2, v_th 1, hard reset)
    assert lif(x).flatten().tolist() == [0, 1, 0, 1, 0, 1]
    assert LIF(1, v_threshold=0.5)(x).flatten().tolist() == [1] * 6
    # matches spikingjelly's MultiStepLIFNode update (decay_input, v_reset 0, detach_reset)
    xr = torch.randn(3, 5, 20, generator=torch.Generator().manual_seed(0)) * 2
    v, ref = torch.zeros(3, 5), []
    for t in range(20):
        h = v + (xr[..., t] - v) / 2.0
        ref.append((h >= 1.0).float())
        v = h * (1 - ref[-1])
    assert torch.equal(lif(xr), torch.stack(ref, -1))
    lif.train()
    xg = torch.full((1, 1, 3), 1.2, requires_grad=True)
    lif(xg).sum().backward()
    assert xg.grad is not None and (xg.grad != 0).all()


# --- streaming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*TINY, "lmuformer"])
def test_step_module_reproduces_cumulative_mean(name: str) -> None:
    m = _build(name)
    x = _input(name, batch=2)
    with torch.no_grad():
        e = m.embed(x)  # (B, dim, L)
        per_step = m.forward_steps(e)  # (B, L, K)
        cum = per_step.cumsum(1) / torch.arange(1, e.shape[-1] + 1).view(1, -1, 1)
        assert torch.allclose(cum[:, -1], m(x), atol=1e-6)
        step, outs = m.step_module(), []
        state = step.init_state(2)
        # state: one tensor per LMU memory / LIF membrane (named by m.state_keys), logit sum, count
        assert len(state) == len(m.state_keys) + 2 and state[-1].shape == (1,)
        n = e.shape[-1] if name in TINY else 32  # full config: the first 32 steps (they depend on nothing later)
        for t in range(n):
            # sequence models stream embedded steps; the video model streams raw frames
            out = step(x[:, :, t] if name in VIDEO else e[:, :, t], *state)
            assert [o.shape for o in out[1:]] == [s.shape for s in state]
            outs.append(out[0])
            state = out[1:]
    assert per_step.std() > 0  # the comparison is not between constants
    torch.testing.assert_close(torch.stack(outs, 1), cum[:, :n], atol=1e-4, rtol=0)


def test_video_model_is_causal() -> None:
    m = _build("lmuformer_video_tiny")
    x = _input("lmuformer_video_tiny")
    x2 = x.clone()
    x2[:, :, 5:] = torch.randn_like(x2[:, :, 5:])
    with torch.no_grad():
        a, b = m.forward_steps(m.embed(x)), m.forward_steps(m.embed(x2))
    assert torch.equal(a[:, :5], b[:, :5]) and not torch.allclose(a[:, 5:], b[:, 5:])


# --- export -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*SEQ, *VIDEO])
def test_export_model_and_step(name: str) -> None:
    m = _build(name, calibrate=name in TINY)
    x = _input(name)
    ep = torch.export.export(m, (x,), strict=False)
    ops = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert not any("fft" in op or "complex" in op for op in ops)
    step = m.step_module()
    xt = x[:, :, 0] if name in VIDEO else m.embed(x)[:, :, 0]
    state = step.init_state(1)
    ep_step = torch.export.export(step, (xt, *state), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), m(x), atol=1e-5, rtol=1e-5)
        for got, ref in zip(ep_step.module()(xt, *state), step(xt, *state)):
            torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


# --- ONNX ---------------------------------------------------------------------------------------


@pytest.mark.toolchain("onnx")
@pytest.mark.parametrize("name", TINY)
def test_onnx_compile_passes(name: str, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    m = _build(name)
    shape = tuple(_input(name).shape)
    report = edgest.compile(m, "onnx", input_shape=shape, out_dir=tmp_path / "r", latency=None)
    assert report.status == "passed", report.error
    assert report.checks[0].metrics["output_scale"] > 0  # calibrated BNs: the logits are not all zero
