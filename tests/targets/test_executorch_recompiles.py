"""A recompile of an unchanged graph is skipped inside the lowering, and every change still recompiles
(edgest_executorch.recompiles)."""

from __future__ import annotations

import copy
import operator

import pytest
import torch

pytest.importorskip("executorch", reason="ExecuTorch toolchain not installed (pip install -e targets/executorch)")

from edgest_executorch.recompiles import skip_unchanged_recompiles

aten = torch.ops.aten


class Tiny(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 2.0 + 1.0).relu()


@pytest.fixture
def generated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per time fx really generated a module's code (``Graph.python_code``)."""
    seen: list[int] = []
    real = torch.fx.Graph.python_code

    def counted(self, *args, **kwargs):
        seen.append(id(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.fx.Graph, "python_code", counted)
    return seen


def module(generated: list[int] | None = None) -> torch.fx.GraphModule:
    """Tiny's graph module; ``generated`` forgets what exporting it generated."""
    gm = torch.export.export(Tiny(), (torch.randn(2, 3),)).run_decompositions({}).graph_module
    if generated is not None:
        generated.clear()
    return gm


def node_of(gm: torch.fx.GraphModule, target: object) -> torch.fx.Node:
    return next(n for n in gm.graph.nodes if n.target == target)


X = torch.tensor([[-1.0, 0.5, 2.0]])


def test_an_unchanged_graph_is_not_recompiled_and_each_kind_of_change_is(generated: list[int]) -> None:
    gm = module(generated)
    with skip_unchanged_recompiles():
        gm.recompile()
        assert len(generated) == 1
        code = gm.code
        gm.recompile()
        gm.recompile()
        assert len(generated) == 1 and gm.code == code  # nothing changed: the code made the first time
        node_of(gm, aten.relu.default).target = aten.sigmoid.default  # a target changed
        gm.recompile()
        assert len(generated) == 2 and torch.allclose(gm(X)[0], torch.sigmoid(X * 2 + 1))
        mul, add = node_of(gm, aten.mul.Tensor), node_of(gm, aten.add.Tensor)
        add.replace_input_with(mul, next(iter(gm.graph.nodes)))  # an argument changed: add now reads the input
        gm.recompile()
        assert len(generated) == 3 and torch.allclose(gm(X)[0], torch.sigmoid(X + 1))
        add.args = (add.args[0], 3.0)  # a literal changed
        gm.recompile()
        assert len(generated) == 4 and torch.allclose(gm(X)[0], torch.sigmoid(X + 3))
        add.kwargs = {"alpha": 2}
        gm.recompile()
        assert len(generated) == 5 and torch.allclose(gm(X)[0], torch.sigmoid(X + 6))
        with gm.graph.inserting_after(add):  # a node inserted
            neg = gm.graph.call_function(aten.neg.default, (add,))
        add.replace_all_uses_with(neg, delete_user_cb=lambda user: user is not neg)
        gm.recompile()
        assert len(generated) == 6 and torch.allclose(gm(X)[0], torch.sigmoid(-(X + 6)))
        gm.graph.eliminate_dead_code()  # the now unused mul erased
        gm.recompile()
        assert len(generated) == 7 and "mul" not in gm.code
        gm.recompile()
        assert len(generated) == 7
    gm.recompile()  # outside the block: fx's own recompile again
    assert len(generated) == 8


def test_an_integer_replaced_by_an_equal_float_is_recompiled(generated: list[int]) -> None:
    gm = module(generated)
    add = node_of(gm, aten.add.Tensor)
    with skip_unchanged_recompiles():
        gm.recompile()
        add.args = (add.args[0], 1)  # 1 == 1.0, but another argument: the code says 1, not 1.0
        gm.recompile()
        assert len(generated) == 2 and "add.Tensor(mul, 1)" in gm.code


def test_a_new_graph_and_a_copy_get_their_own_code(generated: list[int]) -> None:
    gm = module(generated)
    with skip_unchanged_recompiles():
        gm.recompile()
        twin = copy.deepcopy(gm)  # a new module, a new class: its code is made for it
        assert torch.allclose(twin(X)[0], (X * 2 + 1).relu())
        twin.recompile()
        count = len(generated)
        gm.graph = copy.deepcopy(gm.graph)  # another Graph object, nodes alike: generated again
        assert len(generated) == count + 1
        node_of(gm, aten.relu.default).target = aten.sigmoid.default
        gm.recompile()
        assert torch.allclose(gm(X)[0], torch.sigmoid(X * 2 + 1))
        assert torch.allclose(twin(X)[0], (X * 2 + 1).relu())  # the copy kept its own graph and code


def test_a_submodule_changed_under_an_unchanged_parent_is_recompiled(generated: list[int]) -> None:
    child = module(generated)
    graph = torch.fx.Graph()
    x = graph.placeholder("x")
    out = graph.call_module("child", (x,))
    graph.output(graph.call_function(operator.getitem, (out, 0)))
    parent = torch.fx.GraphModule({"child": child}, graph)
    with skip_unchanged_recompiles():
        parent.recompile()
        count = len(generated)
        node_of(child, aten.relu.default).target = aten.sigmoid.default
        parent.recompile()  # the parent's graph is unchanged; the child's is not
        assert len(generated) == count + 1
        assert torch.allclose(parent(X), torch.sigmoid(X * 2 + 1))


def test_the_original_recompile_is_restored_after_an_error() -> None:
    real = torch.fx.GraphModule.recompile
    with pytest.raises(RuntimeError, match="boom"), skip_unchanged_recompiles():
        assert torch.fx.GraphModule.recompile is not real
        with skip_unchanged_recompiles():  # nested: the outer one's
            inner = torch.fx.GraphModule.recompile
        assert torch.fx.GraphModule.recompile is inner
        raise RuntimeError("boom")
    assert torch.fx.GraphModule.recompile is real
