"""ExecuTorch passes that changed nothing are not re-traced, and every other pass still is (edgest_executorch.retraces)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

pytest.importorskip("executorch", reason="ExecuTorch toolchain not installed (pip install -e targets/executorch)")

from edgest_executorch import lowering, retraces
from executorch.exir.pass_base import ExportPass

aten = torch.ops.aten


class Tiny(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 2.0 + 1.0).relu()


class NoOp(ExportPass):
    """Rewrites nothing by hand, then re-traces (what XNNPACK's pattern passes do on a model without their pattern)."""

    def call(self, graph_module: torch.fx.GraphModule):
        return super().call(graph_module)


class AddToSub(ExportPass):
    """Does its work inside the re-trace: it must never be skipped."""

    def call_operator(self, op, args, kwargs, meta):
        return super().call_operator(aten.sub.Tensor if op == aten.add.Tensor else op, args, kwargs, meta)


class ReluToSigmoid(ExportPass):
    """Rewrites by hand, then re-traces."""

    def call(self, graph_module: torch.fx.GraphModule):
        for node in graph_module.graph.nodes:
            if node.target == aten.relu.default:
                node.target = aten.sigmoid.default
        graph_module.recompile()
        return super().call(graph_module)


@pytest.fixture
def retraced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the passes whose re-trace ran (ExportPass.call_submodule is the re-trace)."""
    seen: list[str] = []
    real = ExportPass.call_submodule

    def counted(self, graph_module, inputs):
        seen.append(type(self).__name__)
        return real(self, graph_module, inputs)

    monkeypatch.setattr(ExportPass, "call_submodule", counted)
    return seen


def graph() -> torch.fx.GraphModule:
    return torch.export.export(Tiny(), (torch.randn(2, 3),)).run_decompositions({}).graph_module


def targets(gm: torch.fx.GraphModule) -> list[object]:
    return [n.target for n in gm.graph.nodes if n.op == "call_function"]


def test_only_a_pass_that_changed_nothing_on_a_re_traced_graph_is_skipped(retraced: list[str]) -> None:
    with retraces.skip_unchanged_retraces():
        first = NoOp()(graph())
        assert retraced == ["NoOp"]  # nothing re-traced before it: not known to be clean
        again = NoOp()(first.graph_module)
        assert retraced == ["NoOp"] and again.graph_module is first.graph_module and not again.modified
        sub = AddToSub()(first.graph_module)
        assert retraced == ["NoOp", "AddToSub"]  # its work is the re-trace
        assert aten.sub.Tensor in targets(sub.graph_module) and aten.add.Tensor not in targets(sub.graph_module)
        sigmoid = ReluToSigmoid()(sub.graph_module)
        assert retraced == ["NoOp", "AddToSub", "ReluToSigmoid"]  # the graph changed: re-traced
        assert aten.sigmoid.default in targets(sigmoid.graph_module)
        node = sigmoid.graph_module.graph.find_nodes(op="call_function", target=aten.sigmoid.default)[0]
        assert tuple(node.meta["val"].shape) == (2, 3)  # the re-trace gave the new node its metadata
        NoOp()(sigmoid.graph_module)
        assert retraced == ["NoOp", "AddToSub", "ReluToSigmoid"]
    NoOp()(sigmoid.graph_module)  # outside: every pass re-traces again
    assert retraced[-1] == "NoOp" and len(retraced) == 4


def test_the_same_graph_at_another_input_shape_is_re_traced(retraced: list[str]) -> None:
    with retraces.skip_unchanged_retraces():
        NoOp()(graph())
        other = torch.export.export(Tiny(), (torch.randn(4, 5),)).run_decompositions({}).graph_module
        assert retraces.graph_signature(other) != retraces.graph_signature(graph())
        NoOp()(other)
    assert retraced == ["NoOp", "NoOp"]


def test_the_original_re_trace_is_restored_after_an_error_and_nesting_is_the_outer_ones() -> None:
    real = ExportPass.call
    with pytest.raises(RuntimeError, match="boom"), retraces.skip_unchanged_retraces():
        patched = ExportPass.call
        assert patched is not real
        with retraces.skip_unchanged_retraces():
            assert ExportPass.call is patched
        assert ExportPass.call is patched
        raise RuntimeError("boom")
    assert ExportPass.call is real


def test_which_passes_may_be_skipped() -> None:
    assert retraces.rewrites_only_by_hand(NoOp) and retraces.rewrites_only_by_hand(ReluToSigmoid)
    assert not retraces.rewrites_only_by_hand(AddToSub)

    class Placeholder(ExportPass):
        def placeholder(self, name, arg, meta):
            return super().placeholder(name, arg, meta)

    assert not retraces.rewrites_only_by_hand(Placeholder)


@pytest.fixture
def decomposed(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The programs whose ``run_decompositions`` really ran."""
    seen: list[object] = []
    real = torch.export.ExportedProgram.run_decompositions

    def counted(self, *args, **kwargs):
        seen.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.export.ExportedProgram, "run_decompositions", counted)
    return seen


def _add_to_sub(x: torch.Tensor, y: torch.Tensor, alpha: float = 1) -> torch.Tensor:
    return torch.sub(x, y)


def test_only_a_decomposition_that_could_change_nothing_on_a_decomposed_program_is_skipped(
        decomposed: list[object]) -> None:
    exported = torch.export.export(Tiny(), (torch.randn(2, 3),))
    with retraces.skip_unchanged_retraces():
        first = exported.run_decompositions({})
        assert decomposed == [exported]  # captured, not decomposed yet: it may still need functionalising
        assert first.run_decompositions({aten.sigmoid.default: torch.sigmoid}) is first  # no sigmoid to decompose
        assert first.run_decompositions({}) is first and decomposed == [exported]
        subbed = first.run_decompositions({aten.add.Tensor: _add_to_sub})  # an add to decompose: re-traced
        assert decomposed == [exported, first]
        assert aten.sub.Tensor in targets(subbed.graph_module) and aten.add.Tensor not in targets(subbed.graph_module)
        assert first.run_decompositions() is not first  # None: the default table, re-traced
        node = next(n for n in subbed.graph.nodes if n.target == aten.relu.default)
        node.target = aten.relu_.default  # a mutating op put in by hand: it needs functionalising again
        assert subbed.run_decompositions({}) is not subbed
    assert first.run_decompositions({}) is not first  # outside: every decomposition re-traces again


def test_a_decomposition_needs_no_mutation_and_no_op_of_the_table() -> None:
    program = torch.export.export(Tiny(), (torch.randn(2, 3),)).run_decompositions({})
    assert retraces.decomposes_nothing(program, {}) and retraces.decomposes_nothing(program, {aten.tanh.default: None})
    assert not retraces.decomposes_nothing(program, {aten.mul.Tensor: None})
    assert not retraces.decomposes_nothing(program, None)  # the default table: not built to be asked
    assert retraces.decomposes_nothing(program, torch.export.default_decompositions())  # core ops only
    # torch's lazy table knows its composite ops: a linear kept by ``{}`` is one the default table decomposes
    linear = torch.export.export(torch.nn.Linear(3, 2), (torch.randn(2, 3),)).run_decompositions({})
    assert aten.linear.default in targets(linear.graph_module)
    assert not retraces.decomposes_nothing(linear, torch.export.default_decompositions())


class ConvNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).relu().mean((2, 3)))


@pytest.fixture
def dtype_checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Signatures of the graphs the edge verifier's dtype check really ran on (the memo wraps this counter)."""
    from executorch.exir.verification import verifier

    seen: list[str] = []
    real = verifier._check_tensor_args_matching_op_allowed_dtype

    def counted(gm: torch.fx.GraphModule) -> None:
        seen.append(retraces.checked_signature(gm))
        if getattr(gm, "planted_dtype_error", False):
            raise RuntimeError("planted dtype error")
        real(gm)

    monkeypatch.setattr(verifier, "_check_tensor_args_matching_op_allowed_dtype", counted)
    return seen


def _with_table(dtype: torch.dtype) -> torch.fx.GraphModule:
    """:func:`graph` with an unused attribute ``table`` of ``dtype`` read by a ``get_attr`` node."""
    gm = graph()
    gm.register_buffer("table", torch.zeros(3, dtype=dtype))
    with gm.graph.inserting_after(next(iter(gm.graph.nodes))):
        gm.graph.get_attr("table")
    return gm


def test_the_dtype_check_runs_once_per_graph_and_a_failure_every_time(dtype_checked: list[str]) -> None:
    from executorch.exir.verification import verifier

    gm, other = graph(), graph()
    with retraces.skip_unchanged_retraces():
        verifier._check_tensor_args_matching_op_allowed_dtype(gm)
        verifier._check_tensor_args_matching_op_allowed_dtype(gm)
        verifier._check_tensor_args_matching_op_allowed_dtype(other)  # another graph module, the same graph
        assert len(dtype_checked) == 1
        ReluToSigmoid().call(gm)  # changed by hand and re-traced: checked again
        verifier._check_tensor_args_matching_op_allowed_dtype(gm)
        assert len(dtype_checked) == 2
        bad = _with_table(torch.float64)
        bad.planted_dtype_error = True
        for _ in range(2):  # a graph that failed is not remembered: checked (and failing) each time
            with pytest.raises(RuntimeError, match="planted"):
                verifier._check_tensor_args_matching_op_allowed_dtype(bad)
        assert len(dtype_checked) == 4
    verifier._check_tensor_args_matching_op_allowed_dtype(other)  # outside the block: always run
    assert len(dtype_checked) == 5


def test_the_checked_signature_reads_input_and_attribute_dtypes() -> None:
    half = torch.export.export(Tiny(), (torch.randn(2, 3, dtype=torch.float16),)).run_decompositions({}).graph_module
    assert retraces.checked_signature(graph()) == retraces.checked_signature(graph())
    assert retraces.checked_signature(graph()) != retraces.checked_signature(half)
    f32, f64 = _with_table(torch.float32), _with_table(torch.float64)
    assert retraces.graph_signature(f32) == retraces.graph_signature(f64)  # the same nodes ...
    assert retraces.checked_signature(f32) != retraces.checked_signature(f64)  # ... an attribute of another dtype


def test_a_lowering_skips_re_traces_and_writes_the_same_pte(tmp_path: Path, retraced: list[str],
                                                            decomposed: list[object], dtype_checked: list[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model, x = ConvNet().eval(), torch.randn(1, 3, 16, 16)
    lowering.lower_to_pte(torch.export.export(model, (x,)), tmp_path / "warm.pte", flavour="xnnpack", decompose=True)
    from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa

    # the first pattern pass to match in a process builds its patterns (lowering each): not on this model with the
    # skips, so build them before the lowering without them, or it counts theirs
    sdpa.get_graphs(), bilinear_2d.get_graphs_dict()
    retraced.clear()
    decomposed.clear()
    dtype_checked.clear()
    # a program each: the lowering changes the one it is given
    lowering.lower_to_pte(torch.export.export(model, (x,)), tmp_path / "skip.pte", flavour="xnnpack", decompose=True)
    with_skip, decompositions_with_skip, checks_with_skip = set(retraced), len(decomposed), list(dtype_checked)
    retraced.clear()
    decomposed.clear()
    dtype_checked.clear()
    monkeypatch.setattr(retraces, "skip_unchanged_retraces", contextlib.nullcontext)
    lowering.lower_to_pte(torch.export.export(model, (x,)), tmp_path / "plain.pte", flavour="xnnpack", decompose=True)
    without = set(retraced)
    # ExecuTorch's last decomposition, after the ops XNNPACK keeps are set aside, has nothing left to decompose; nor
    # has its first, functionalising one, on the program edgest's rewrites (the mean here) decomposed just before
    assert decompositions_with_skip == len(decomposed) - 2, (decompositions_with_skip, len(decomposed))
    # XNNPACK's SDPA and upsampling passes find nothing here: skipped; edge passes working inside the re-trace are not
    assert {"ConvertToSDPAPass", "ConvertToUpsampleBilinear2d"} <= without - with_skip, (with_skip, without)
    assert {"ScalarToTensorPass", "FuseBatchNormPass"} <= with_skip
    # edge passes that work in the re-trace on ops this graph lacks (no symbols, no view left by then): skipped
    assert {"SymToTensorPass", "ReplaceBrokenOpsWithFunctionalOpsPass"} <= without - with_skip, (with_skip, without)
    # the verifier's dtype check ran on each distinct graph once, where it used to run on some several times
    assert len(checks_with_skip) == len(set(checks_with_skip)) < len(dtype_checked), (checks_with_skip, dtype_checked)
    assert set(checks_with_skip) == set(dtype_checked)
    assert (tmp_path / "skip.pte").read_bytes() == (tmp_path / "plain.pte").read_bytes()


def test_each_pattern_pass_lists_ops_every_one_of_its_patterns_holds() -> None:
    """The skip of an XNNPACK pattern pass is exact only while this holds; an ExecuTorch upgrade may change the patterns."""
    from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa

    patterns = {"ConvertToSDPAPass": sdpa.get_graphs(), "ConvertToUpsampleBilinear2d": list(bilinear_2d.get_graphs_dict())}
    assert {name for _, name in retraces.PATTERN_PASSES} == set(patterns)
    for (_, name), ops in retraces.PATTERN_PASSES.items():
        for pattern in patterns[name]:
            assert not retraces.lacks_any(pattern.graph, ops), (name, pattern.graph)


class Attention(torch.nn.Module):
    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return torch.bmm(torch.softmax(torch.bmm(q, q.transpose(1, 2)), dim=-1), q)


class MaskedAttention(torch.nn.Module):
    def forward(self, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask)


def test_a_pattern_pass_builds_its_patterns_only_for_a_graph_with_their_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    from executorch.backends.xnnpack._passes.convert_to_sdpa import ConvertToSDPAPass
    from executorch.backends.xnnpack.partition.graphs import sdpa

    class Built(Exception):
        pass

    def build() -> list[torch.fx.GraphModule]:
        raise Built

    monkeypatch.setattr(sdpa, "get_graphs", build)
    conv_ep = torch.export.export(ConvNet().eval(), (torch.randn(1, 3, 16, 16),))
    # decomposed as in the edge dialect the pass sees (softmax.int becomes _softmax)
    attention_ep = torch.export.export(Attention(), (torch.randn(2, 4, 8),)).run_decompositions()
    masked_ep = torch.export.export(MaskedAttention(), (torch.randn(1, 2, 4, 8), torch.zeros(4, 4))).run_decompositions()
    conv, attention, masked = conv_ep.graph_module, attention_ep.graph_module, masked_ep.graph_module
    ops = dict(retraces.PATTERN_PASSES)[("executorch.backends.xnnpack._passes.convert_to_sdpa", "ConvertToSDPAPass")]
    assert retraces.lacks_any(conv.graph, ops) and retraces.lacks_any(attention.graph, ops)
    assert not retraces.lacks_any(masked.graph, ops)
    with retraces.skip_unchanged_retraces():
        result = ConvertToSDPAPass(conv_ep)(conv)  # no softmax: no pattern built, the graph as it was
        assert [n.target for n in result.graph_module.graph.nodes] == [n.target for n in conv.graph.nodes]
        ConvertToSDPAPass(attention_ep)(attention)  # attention without a mask: every pattern has one
        with pytest.raises(Built):
            ConvertToSDPAPass(masked_ep)(masked)
    with pytest.raises(Built):  # outside the block the pass is ExecuTorch's own again
        ConvertToSDPAPass(conv_ep)(conv)


def _graph_calling(*ops: object) -> torch.fx.GraphModule:
    """A graph module whose nodes call ``ops`` in a chain (never run: the passthrough tests read targets only)."""
    g = torch.fx.Graph()
    value = g.placeholder("x")
    value.meta["val"] = torch.empty(2, 3)
    for op in ops:
        value = g.call_function(op, (value,))
        value.meta["val"] = torch.empty(2, 3)
    g.output(value)
    return torch.fx.GraphModule(torch.nn.Module(), g)


def test_each_passthrough_pass_overrides_call_operator_alone() -> None:
    """The skip is exact only while this holds; an ExecuTorch upgrade may give one of them more work."""
    import importlib

    from edgest_executorch.passthrough import PASSTHROUGH_PASSES

    for module, name in PASSTHROUGH_PASSES:
        cls = getattr(importlib.import_module(module), name)
        assert cls.__mro__[1] is ExportPass, name
        assert {k for k in vars(cls) if not k.startswith("_")} == {"call_operator"}, name


def test_a_passthrough_pass_is_skipped_only_on_a_graph_without_its_ops(retraced: list[str]) -> None:
    from edgest_executorch.passthrough import has_no_work
    from executorch.exir.dialects._ops import ops as exir_ops
    from executorch.exir.passes.memory_format_ops_pass import (
        DimOrderOpsRevertPass,
        MemoryFormatOpsPass,
    )
    from executorch.exir.passes.normalize_transpose_pass import NormalizeTransposePass
    from executorch.exir.passes.replace_broken_ops_with_function_ops_pass import (
        ReplaceBrokenOpsWithFunctionalOpsPass,
    )
    from executorch.exir.passes.sym_to_tensor_pass import SymToTensorPass

    edge = exir_ops.edge
    cases = {  # pass: (a graph holding an op it rewrites, one without)
        NormalizeTransposePass(): (aten.t.default, aten.relu.default),
        ReplaceBrokenOpsWithFunctionalOpsPass(): (aten.view.default, aten.view_copy.default),
        MemoryFormatOpsPass(): (edge.aten.clone.default, edge.aten.relu.default),
        DimOrderOpsRevertPass(): (edge.dim_order_ops._clone_dim_order.default, edge.aten.clone.default),
    }
    for pass_, (rewritten, other) in cases.items():
        assert not has_no_work(pass_, _graph_calling(aten.relu.default, rewritten)), pass_
        assert has_no_work(pass_, _graph_calling(aten.relu.default, other)), pass_
    symbolic = torch.export.export(Flatten(), (torch.randn(2, 3),),
                                   dynamic_shapes=({0: torch.export.Dim("batch")},)).run_decompositions({})
    assert not has_no_work(SymToTensorPass(), symbolic.graph_module)  # a SymInt batch size flows into the view
    static = graph()
    assert has_no_work(SymToTensorPass(), static)
    unrecorded = _graph_calling(aten.relu.default)
    next(iter(unrecorded.graph.nodes)).meta.pop("val")
    assert not has_no_work(SymToTensorPass(), unrecorded)  # a value not recorded: not known to be free of symbols

    class Subclass(NormalizeTransposePass):
        pass

    assert not has_no_work(Subclass(), _graph_calling(aten.relu.default))  # only the listed classes themselves
    with retraces.skip_unchanged_retraces():
        first = NoOp()(static)
        NormalizeTransposePass()(first.graph_module)  # no aten.t on a re-traced graph: its re-trace is skipped
        assert retraced == ["NoOp"]
        transposed = NoOp()(torch.export.export(Transpose(), (torch.randn(2, 3),)).run_decompositions({}).graph_module)
        normal = NormalizeTransposePass()(transposed.graph_module)  # aten.t to rewrite: re-traced
        assert retraced == ["NoOp", "NoOp", "NormalizeTransposePass"]
        assert aten.t_copy.default in targets(normal.graph_module) and aten.t.default not in targets(normal.graph_module)


class Flatten(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0] * 3).relu()


class Transpose(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.t().relu()
