"""edgest.provenance: node provenance is shared between passes instead of deep-copied, and reads the same."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.fx.traceback import NodeSource

from edgest.provenance import shared_provenance


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.silu(self.bn(self.conv(x))).mean((2, 3))


def _chain(sources: list[NodeSource] | None) -> list[tuple]:
    """A provenance chain without graph ids (those differ between two runs of the same passes)."""
    return [(s.name, s.target, s.pass_name, s._get_action_string(), tuple(_chain(s.from_node))) for s in sources or []]


def _decomposed_chains() -> dict[str, list[tuple]]:
    torch.manual_seed(0)
    program = torch.export.export(_Net().eval(), (torch.randn(1, 3, 8, 8),))
    for _ in range(3):  # each decomposition is a pass that makes every node anew from the one before
        program = program.run_decompositions()
    return {n.name: _chain(n.meta.get("from_node")) for n in program.graph.nodes}


def test_a_node_source_is_shared_inside_and_copied_outside() -> None:
    program = torch.export.export(_Net().eval(), (torch.randn(1, 3, 8, 8),)).run_decompositions()
    source = next(s for n in program.graph.nodes for s in n.meta.get("from_node") or [])
    assert copy.deepcopy(source) is not source
    with shared_provenance():
        assert copy.deepcopy(source) is source
        assert copy.deepcopy({"from_node": [source]})["from_node"][0] is source
    assert copy.deepcopy(source) is not source and "__deepcopy__" not in vars(NodeSource)
    with pytest.raises(RuntimeError), shared_provenance():
        raise RuntimeError("a failing pass")
    assert "__deepcopy__" not in vars(NodeSource)  # restored on the way out of an exception too


def test_passes_record_the_same_provenance_when_it_is_shared() -> None:
    copied = _decomposed_chains()
    with shared_provenance():
        shared = _decomposed_chains()
    assert shared == copied
    assert max(len(str(c)) for c in copied.values()) > 200  # chains several passes deep were compared


def test_nested_use_leaves_sharing_on_until_the_outer_one_ends() -> None:
    source = NodeSource(None, "p")
    with shared_provenance():
        with shared_provenance():
            pass
        assert copy.deepcopy(source) is source
    assert copy.deepcopy(source) is not source
