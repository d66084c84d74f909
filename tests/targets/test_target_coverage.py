"""``Target.coverage`` of each first-party target agrees with what its compile does.

For each installed target: a tiny model with one op the target cannot run natively; the
coverage (``edgest check``) must predict that op's verdict, and lowering the same program must
agree (the op left out of the XNNPACK delegate; an unsupported op refused naming it).
"""

from __future__ import annotations

import pytest
import torch

from edgest.errors import Unsupported
from edgest.plugins import get_registry
from edgest.preflight import check

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


class ConvThen(torch.nn.Module):
    """A conv and a relu (every target runs them), then one op chosen by the test."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        if self.op == "cummax":
            return torch.cummax(y, 2)[0]
        return torch.cumsum(y, 2)


SHAPE = (1, 3, 8, 8)


def _target(name: str):
    """The registered target ``name`` at its defaults; skipped (naming why) when its toolchain is missing."""
    registry = get_registry()
    if name not in registry.targets:
        pytest.skip(f"target '{name}' is not installed (pip install -e targets/{name})")
    cls = registry.target(name)
    reason = cls.unavailable_reason()
    if reason:
        pytest.skip(f"target '{name}' unavailable here: {reason}")
    return cls()


def _predict_and_lower(name: str, op: str, tmp_path):
    """(coverage from ``edgest check``, the lowering's details or the error it raised)."""
    target = _target(name)
    model = ConvThen(op).eval()
    result = check(model, [name], input_shape=SHAPE)
    coverage = result.coverage[name]
    assert coverage.status == "known", coverage.note
    example = (torch.randn(*SHAPE),)
    program = torch.export.export(model, example, strict=False)
    try:
        return coverage, target.lower(program, example, tmp_path).details
    except Exception as exc:  # noqa: BLE001 - some toolchains refuse with their own error type (see below)
        return coverage, exc


@pytest.mark.parametrize("name", ["onnx", "tvm", "coreml", "openvino", "litert", "coreai"])
def test_an_op_the_target_lacks_is_predicted_unsupported_and_the_compile_refuses_it(name, tmp_path):
    coverage, lowered = _predict_and_lower(name, "cummax", tmp_path)
    assert coverage.verdicts("aten.cummax") == {"unsupported": 1}
    assert coverage.verdicts("aten.conv2d") == {"native": 1}
    assert coverage.verdicts("aten.relu") == {"native": 1}
    assert isinstance(lowered, Exception), f"{name} lowered cummax although coverage said it cannot"
    assert "cummax" in str(lowered)
    if name != "openvino":  # OpenVINO's lower lets the frontend's OpConversionFailure through (it names the op)
        assert isinstance(lowered, Unsupported)


def test_executorch_predicts_which_ops_stay_out_of_the_xnnpack_delegate(tmp_path):
    coverage, details = _predict_and_lower("executorch", "cumsum", tmp_path)
    assert coverage.verdicts("aten.conv2d") == {"delegated": 1}
    assert coverage.verdicts("aten.relu") == {"delegated": 1}
    assert coverage.verdicts("aten.cumsum") == {"fallback": 1}
    assert not isinstance(details, Exception), details
    # the lowered program agrees: cumsum on portable kernels, the rest inside the delegate
    assert set(details["non_delegated_ops"]) == {"aten.cumsum"}
    assert details["delegated_nodes"] >= 2


def test_executorch_predicts_an_op_with_no_kernel_outside_core_aten_as_unsupported(tmp_path):
    coverage, lowered = _predict_and_lower("executorch", "cummax", tmp_path)
    assert coverage.verdicts("aten.cummax") == {"unsupported": 1}
    assert coverage.verdicts("aten.conv2d") == {"delegated": 1}
    # the lowering agrees: the edge dialect's verifier refuses cummax (its own error type, naming the op)
    assert isinstance(lowered, Exception) and "cummax" in str(lowered)


class Repeated(torch.nn.Module):
    """One block applied four times (one op signature per block op), a view, a multi-output op and cummax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.block = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        for _ in range(4):
            y = torch.nn.functional.gelu(self.norm(self.block(y))) + y
        a, b = y.split(2, dim=1)
        y = torch.cat([a.transpose(2, 3), b.transpose(2, 3)], 1).softmax(-1)
        return torch.cummax(y, 2)[0]


@pytest.mark.parametrize("name", ["onnx", "tvm", "coreml", "litert", "cuda", "openvino", "coreai"])
def test_judging_one_node_per_op_signature_gives_the_whole_graphs_verdicts(name, monkeypatch):
    from edgest import coverage as cov

    _target(name)
    model = Repeated().eval()
    sampled = check(model, [name], input_shape=SHAPE).coverage[name]
    monkeypatch.setattr(cov, "SAMPLE_OPS", False)
    whole = check(model, [name], input_shape=SHAPE).coverage[name]
    assert sampled.status == whole.status == "known", (sampled.note, whole.note)
    assert sorted(sampled.ops, key=repr) == sorted(whole.ops, key=repr)
    assert sampled.summary() == whole.summary() and sum(sampled.summary().values()) > 20


@pytest.mark.parametrize("model", [pytest.param("repeated", id="repeated-block"),
                                   pytest.param("lmuformer_spiking_tiny", id="spiking-unrolled",
                                                marks=pytest.mark.slow)])  # its edge passes: a minute on 2 cores
def test_executorch_judging_each_node_in_its_neighbourhood_gives_the_whole_graphs_verdicts(model, monkeypatch):
    """The spiking model has the two-node patterns edgest's XNNPACK rewrites fold (``(x >= c).float()`` as a step),
    batch norms, weights folded as constants and an unrolled time loop."""
    from edgest import coverage as cov
    from edgest import coverage_sample

    _target("executorch")
    monkeypatch.setattr(coverage_sample, "CONTEXT_SHARE", 10.0)  # sample even where it saves little (small models)
    given = Repeated().eval() if model == "repeated" else model
    shape = SHAPE if model == "repeated" else None
    sampled = check(given, ["executorch"], input_shape=shape).coverage["executorch"]
    monkeypatch.setattr(cov, "SAMPLE_OPS", False)
    whole = check(given, ["executorch"], input_shape=shape).coverage["executorch"]
    assert sampled.status == whole.status == "known", (sampled.note, whole.note)
    assert sorted(sampled.ops, key=repr) == sorted(whole.ops, key=repr)
    assert "delegated" in sampled.summary()


def test_a_sample_has_one_stand_in_per_op_signature_and_none_for_dead_nodes():
    from edgest.coverage_sample import context_sample, op_sample

    model = Repeated().eval()
    program = torch.export.export(model, (torch.randn(*SHAPE),), strict=False)
    sample, stand_in = op_sample(program)
    work = [n for n in program.graph.nodes if n.op == "call_function" and "getitem" not in str(n.target)]
    assert set(stand_in) == {n.name for n in work}
    blocks = [n.name for n in work if n.target is torch.ops.aten.gelu.default]
    assert len(blocks) == 4 and len({stand_in[b] for b in blocks}) == 1  # four blocks, one gelu judged
    assert sum(1 for n in sample.graph.nodes if n.target is torch.ops.aten.gelu.default) == 1
    dead = torch.export.export(_Dead().eval(), (torch.randn(2, 3),), strict=False)
    _, stand_in = op_sample(dead)
    assert [n for n, s in stand_in.items() if "sin" in n] == []  # a dead node gets no stand-in: "removed"
    assert context_sample(dead) is None or "sin" not in str(context_sample(dead)[1])


class _Dead(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.sin(x)  # computed, never used
        return torch.relu(x)


class _Stepped(torch.nn.Module):
    """An unrolled time loop (12 steps, two ops each) whose steps are concatenated: a 12-input cat."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, gs = torch.zeros_like(x.narrow(-1, 0, 1)), []
        for g_in in (x / -2.0).split(1, -1):
            g = g_in.add(w, alpha=0.5)
            gs.append(g)
            w = torch.nn.functional.threshold(g, -1.0, 0.0)
        return torch.cat(gs, -1).relu()


STEPPED_SHAPE = (1, 4, 12)


def test_a_concatenation_of_every_step_reads_one_shared_input_in_a_sample():
    """Its 12 inputs would be 12 sample inputs, each traced by every toolchain (a spiking model: 700 of 826 nodes)."""
    from torch.export.graph_signature import InputKind

    from edgest.coverage_sample import context_sample, op_sample

    program = torch.export.export(_Stepped().eval(), (torch.randn(*STEPPED_SHAPE),), strict=False)
    for sampler in (op_sample, context_sample):
        made = sampler(program)
        if made is None:  # context_sample declines a sample that would not be much smaller
            continue
        sample, _ = made
        (cat,) = [n for n in sample.graph.nodes if n.target is torch.ops.aten.cat.default]
        assert len(cat.args[0]) == 12 and len(set(cat.args[0])) < 12, sampler.__name__
        inputs = [s for s in sample.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
        assert len(inputs) < 12, (sampler.__name__, len(inputs))
        sample.module()(*(torch.randn(*n.meta["val"].shape) for n in sample.graph.find_nodes(op="placeholder")
                          if n.name in {s.arg.name for s in inputs}))  # still a program that runs


@pytest.mark.parametrize("name", ["onnx", "tvm", "openvino", "executorch"])
def test_a_sample_with_shared_step_inputs_gives_the_whole_graphs_verdicts(name, monkeypatch):
    from edgest import coverage as cov
    from edgest import coverage_sample

    _target(name)
    monkeypatch.setattr(coverage_sample, "CONTEXT_SHARE", 10.0)  # sample even where it saves little (small model)
    sampled = check(_Stepped().eval(), [name], input_shape=STEPPED_SHAPE).coverage[name]
    monkeypatch.setattr(cov, "SAMPLE_OPS", False)
    whole = check(_Stepped().eval(), [name], input_shape=STEPPED_SHAPE).coverage[name]
    assert sampled.status == whole.status == "known", (sampled.note, whole.note)
    assert sorted(sampled.ops, key=repr) == sorted(whole.ops, key=repr)
    assert sampled.summary() == whole.summary()


class _Mixed(torch.nn.Module):
    """Ops that always compute next to ops a toolchain may drop as identities (a full-length narrow, a clone,
    x * 1, + a zero bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bias = torch.nn.Parameter(torch.zeros(1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).relu()
        z = y.narrow(3, 0, SHAPE[3]).clone() * 1.0 + self.bias
        return (z + y).sigmoid().mean((2, 3))


def test_only_a_node_that_may_fold_away_is_read_by_an_add_in_a_sample():
    from edgest.coverage_sample import may_fold_away, op_sample

    program = torch.export.export(_Mixed().eval(), (torch.randn(*SHAPE),), strict=False)
    constant = {s.arg.name for s in program.graph_signature.input_specs if s.kind.name != "USER_INPUT"}
    folds = {str(n.target): may_fold_away(n, constant) for n in program.graph.nodes if n.op == "call_function"}
    assert folds["aten.conv2d.default"] is folds["aten.relu.default"] is folds["aten.sigmoid.default"] is False
    assert all(folds[f"aten.{op}"] for op in ("narrow.default", "clone.default", "mul.Tensor", "mean.dim"))
    adds = {tuple(a.name in constant for a in n.args): may_fold_away(n, constant)
            for n in program.graph.nodes if n.target is torch.ops.aten.add.Tensor}
    assert adds == {(False, True): True, (False, False): False}  # + a parameter may be + 0; y + z computes
    sample, _ = op_sample(program)
    reads = [n for n in sample.graph.nodes if n.target is torch.ops.aten.add.Tensor and n.args[0] is n.args[1]]
    expected = [t for t, f in folds.items() if f and t != "aten.add.Tensor"] + ["aten.add.Tensor"]  # + the bias
    assert sorted(str(n.args[0].target) for n in reads) == sorted(expected)


@pytest.mark.parametrize("name", ["onnx", "tvm", "openvino", "coreml", "litert"])
def test_a_sample_reading_only_foldable_nodes_gives_the_whole_graphs_verdicts(name, monkeypatch):
    from edgest import coverage as cov

    _target(name)
    sampled = check(_Mixed().eval(), [name], input_shape=SHAPE).coverage[name]
    monkeypatch.setattr(cov, "SAMPLE_OPS", False)
    whole = check(_Mixed().eval(), [name], input_shape=SHAPE).coverage[name]
    assert sampled.status == whole.status == "known", (sampled.note, whole.note)
    assert sorted(sampled.ops, key=repr) == sorted(whole.ops, key=repr)
