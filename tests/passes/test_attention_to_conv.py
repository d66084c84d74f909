"""attention-to-conv: exact channels-first attention rewrite (module swap and graph level)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import edgest
from edgest.errors import BadInput
from edgest.passes.ane_attention import ConvAttention, ConvMultiheadAttention
from edgest.passes.attention_to_conv import AttentionToConvPass, rewrite_modules, rewrite_program
from edgest.passes.base import PassContext
from edgest_models.vivit import AdapterCrossAttention, Attention, vivit_fa_tiny, vivit_fe_tiny

RTOL = 1e-5  # max abs error relative to the output scale (fp32)


def _close(ref: torch.Tensor, got: torch.Tensor) -> None:
    err, top = float((got - ref).abs().max()), float(ref.abs().max())
    assert err <= RTOL * top, f"max abs error {err:.3g} at output scale {top:.3g}"


def _out(y):
    return y[0] if isinstance(y, (tuple, list)) else y


def _ops(program) -> Counter:
    return Counter(str(n.target).split(".")[1] for n in program.graph.nodes
                   if n.op == "call_function" and str(n.target).startswith("aten."))


def _video(batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, 8, 64, 64, generator=torch.Generator().manual_seed(seed))


def _tokens(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class MhaModel(nn.Module):
    """Pre-norm block around nn.MultiheadAttention, called the default way (need_weights=True)."""

    def __init__(self, batch_first: bool = True, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=batch_first)
        self.head = nn.Linear(dim, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, S, C)
        x = x if self.batch_first else x.transpose(0, 1)
        h = self.norm(x)
        x = x + self.attn(h, h, h)[0]
        x = x if self.batch_first else x.transpose(0, 1)
        return self.head(x.mean(1))


class HandWritten(nn.Module):
    """Neither class: separate q/k/v linears, SDPA."""

    def __init__(self, dim: int = 48, heads: int = 3) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = nn.Linear(dim, dim), nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = (f(x).view(b, n, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
        return x + self.o(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))


class OddLayout(nn.Module):
    """Neither class: tokens-first input, head index minor in the channels, explicit softmax, 2-D output projection."""

    def __init__(self, dim: int = 48, heads: int = 4) -> None:
        super().__init__()
        self.heads, self.qkv, self.o = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (S, B, C)
        n, b, c = x.shape
        qkv = self.qkv(x).reshape(n, b, 3, c // self.heads, self.heads).permute(2, 1, 4, 0, 3)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-1, -2) / (c // self.heads) ** 0.5).softmax(-1)
        return self.o((a @ v).permute(2, 0, 3, 1).reshape(n * b, c)).view(n, b, c).relu()


class Masked(HandWritten):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = (f(x).view(b, n, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
        return self.o(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, n, c))


class ProbsOut(nn.Module):
    """Returns its attention probabilities too: left alone."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.qkv, self.o = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        a = (q @ k.transpose(-1, -2)).softmax(-1)
        return self.o(a @ v), a


def test_registered_and_listing_passes_does_not_import_torch() -> None:
    code = ("import sys; from edgest.inventory import inventory; import edgest.passes.attention_to_conv; "
            "names = [r['name'] for r in inventory(['passes'])['passes']]; "
            "print('attention-to-conv' in names, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


def test_bad_options() -> None:
    with pytest.raises(BadInput, match="unknown pass 'attention-to-conv' option 'heads'; available: form, norm, verify"):
        AttentionToConvPass(heads=2)
    with pytest.raises(BadInput, match="form='conv'"):
        AttentionToConvPass(form="conv")


@pytest.mark.parametrize("build,form", [(vivit_fe_tiny, "matmul"), (vivit_fa_tiny, "einsum")])
def test_module_swap_vivit_exact(build, form) -> None:
    torch.manual_seed(0)
    model, x = build().eval(), _video(batch=2)
    new, rewritten, left = rewrite_modules(model, (x,), form=form)
    assert [r["where"] for r in rewritten] == ["spatial.blocks.0.attn", "spatial.blocks.1.attn", "temporal.blocks.0.attn"]
    assert left == [] and sum(isinstance(m, Attention) for m in new.modules()) == 0
    assert sum(isinstance(m, Attention) for m in model.modules()) == 3  # the caller's model is untouched
    if build is vivit_fa_tiny:
        assert isinstance(new.adapter.attn, AdapterCrossAttention)  # cross-attention: not a swap candidate
    with torch.no_grad():
        _close(model(x), new(x))


@pytest.mark.parametrize("batch_first", [True, False])
def test_module_swap_mha_is_a_drop_in(batch_first) -> None:
    torch.manual_seed(0)
    model, x = MhaModel(batch_first).eval(), _tokens(2, 9, 32)
    new, rewritten, _ = rewrite_modules(model, (x,))
    assert rewritten == [{"where": "attn", "kind": "MultiheadAttention", "via": "module swap"}]
    assert isinstance(new.attn, ConvMultiheadAttention)
    q, kv = _tokens(2, 5, 32, seed=1), _tokens(2, 7, 32, seed=2)
    if not batch_first:
        q, kv = q.transpose(0, 1), kv.transpose(0, 1)
    with torch.no_grad():
        _close(model(x), new(x))
        for kw in ({}, {"need_weights": False}, {"average_attn_weights": False}, {"attn_mask": torch.rand(5, 7) > 0.3}):
            ref, got = model.attn(q, kv, kv, **kw), new.attn(q, kv, kv, **kw)  # cross-attention and masks too
            _close(ref[0], got[0])
            assert (ref[1] is None) == (got[1] is None) and (ref[1] is None or torch.allclose(ref[1], got[1], atol=1e-6))
        u = q[0] if batch_first else q[:, 0]  # unbatched self-attention
        ref, got = model.attn(u, u, u), new.attn(u, u, u)
        _close(ref[0], got[0])
        assert torch.allclose(ref[1], got[1], atol=1e-6)


def test_module_swap_leaves_alone_what_it_cannot_prove() -> None:
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.MultiheadAttention(16, 2, batch_first=True), nn.MultiheadAttention(16, 2, batch_first=True)
            self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)

        def forward(self, x):
            y = self.a(x, x, x, need_weights=False)[0]
            return self.layer(self.b(y, x, x)[0])

    _, rewritten, left = rewrite_modules(Two().eval(), (_tokens(1, 6, 16),))
    assert [r["where"] for r in rewritten] == ["a"]
    assert {r["where"]: r["reason"] for r in left} == {
        "b": "cross-attention",
        "layer.self_attn": "inside nn.TransformerEncoderLayer (its fused fast path reads the module's weights)",
    }


def test_graph_rewrite_vivit_fe_counts_and_exactness() -> None:
    torch.manual_seed(0)
    model, x = vivit_fe_tiny().eval(), _video()
    program = torch.export.export(model, (x,), strict=False)
    before = _ops(program)
    new, rewritten, left = rewrite_program(program, (x,))
    after = _ops(new)
    blocks = len(rewritten)
    assert blocks == 3 and left == [] and {r["where"] for r in rewritten} >= {"spatial.blocks.0.attn", "temporal.blocks.0.attn"}
    assert all(r["norm_inside"] for r in rewritten)
    assert before["linear"] - after["linear"] == 2 * blocks  # qkv and proj of every block
    assert after["conv2d"] - before["conv2d"] == 2 * blocks  # ... are now 1x1 convs
    assert before["layer_norm"] - after["layer_norm"] == blocks  # norm1 moved inside, over channels
    heads = model.spatial.blocks[0].attn.num_heads
    assert heads > 1 and after["softmax"] == heads * before["softmax"]  # explicit heads: one softmax per head
    assert not any(k.endswith(("attn.qkv.weight", "attn.proj.weight")) for k in new.state_dict)  # old weights dropped
    assert _ops(program) == before  # the input program is untouched
    with torch.no_grad():
        for seed in range(2):
            xs = _video(seed=seed)
            _close(model(xs), new.module()(xs))
    again, rewritten2, left2 = rewrite_program(new, (x,))  # idempotent: its own attention is skipped
    assert again is new and rewritten2 == left2 == []


def test_graph_rewrite_vivit_fa_leaves_the_adapter_alone() -> None:
    torch.manual_seed(0)
    model, x = vivit_fa_tiny().eval(), _video()
    program = torch.export.export(model, (x,), strict=False)
    new, rewritten, left = rewrite_program(program, (x,), form="einsum", norm=False, verify=False)
    assert len(rewritten) == 3 and not any(r["norm_inside"] for r in rewritten)
    assert left == [{"where": "adapter.attn", "kind": "AdapterCrossAttention", "reason": "cross-attention"}]
    assert _ops(new)["einsum"] == model.spatial.blocks[0].attn.num_heads * 2 * 3  # 2 einsums per head, 3 blocks
    with torch.no_grad():
        _close(model(x), new.module()(x))


@pytest.mark.parametrize("model,x", [
    (MhaModel(True), _tokens(2, 9, 32)),
    (MhaModel(False), _tokens(2, 9, 32)),
    (HandWritten(), _tokens(2, 10, 48)),
    (OddLayout(), _tokens(10, 3, 48)),
], ids=["mha-batch-first", "mha-seq-first", "hand-written-sdpa", "odd-layout"])
def test_graph_rewrite_covers_user_attention(model, x) -> None:
    model.eval()
    program = torch.export.export(model, (x,), strict=False)
    new, rewritten, left = rewrite_program(program, (x,), verify=False)
    assert len(rewritten) == 1 and left == [] and rewritten[0]["kind"] == type(getattr(model, "attn", model)).__name__
    before, after = _ops(program), _ops(new)
    assert "scaled_dot_product_attention" not in after and after["conv2d"] == before["conv2d"] + 2
    assert before["linear"] - after["linear"] == (4 if isinstance(model, HandWritten) else 2)
    with torch.no_grad():
        _close(_out(model(x)), _out(new.module()(x)))


@pytest.mark.parametrize("model,reason", [
    (Masked(), "masked or causal attention"),
    (ProbsOut(), "attention probabilities used outside the block"),
])
def test_graph_rewrite_leaves_alone(model, reason) -> None:
    x = _tokens(1, 6, 48 if isinstance(model, Masked) else 16)
    program = torch.export.export(model.eval(), (x,), strict=False)
    new, rewritten, left = rewrite_program(program, (x,))
    assert new is program and rewritten == [] and [r["reason"] for r in left] == [reason]


def test_emov2_window_attention_is_already_conv_based() -> None:
    from edgest_models.emov2 import emov2_tiny_video

    model, x = emov2_tiny_video().eval(), torch.randn(1, 3, 4, 64, 64)
    program = torch.export.export(model, (x,), strict=False)
    new, rewritten, left = rewrite_program(program, (x,))
    assert new is program and rewritten == [] and len(left) == 4  # local + spanning windows in 2 blocks
    assert {(r["kind"], r["reason"]) for r in left} == {("HybridWindowAttention", "projections are already convolutions")}


def test_pass_with_module_hook_then_program() -> None:
    torch.manual_seed(0)
    model, x = vivit_fa_tiny().eval(), _video()
    p = AttentionToConvPass()
    swapped = p.rewrite_module(model, (x,))
    assert swapped is not model and sum(isinstance(m, ConvAttention) for m in swapped.modules()) == 3
    program = torch.export.export(swapped, (x,), strict=False)
    result = p.run(program, PassContext(None, (x,)))
    assert result.modified and result.program is program
    assert result.summary == ("rewrote 3 attention blocks (module swap: 3 Attention); "
                              "left alone: 1 AdapterCrossAttention (cross-attention)")
    assert [r["via"] for r in result.details["rewritten"]] == ["module swap"] * 3
    with torch.no_grad():
        _close(model(x), result.program.module()(x))


def test_compile_end_to_end_onnx(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    report = edgest.compile(MhaModel(True), "onnx", passes=["attention-to-conv"], input_shape=(1, 9, 32),
                            out_dir=tmp_path / "r", latency=None, samples=2)
    assert report.status == "passed", report.error
    (record,) = report.passes
    assert record.name == "attention-to-conv" and record.modified
    assert record.summary.startswith("rewrote 1 attention block (") and "MultiheadAttention" in record.summary
    assert record.accuracy_delta["sqnr_db"] >= 60
    assert report.checks[0].kind == "accuracy" and report.checks[0].metrics["sqnr_db"] >= 60
