"""``edgest.quantization.output_path``: the walk back from a graph's outputs that program quantizers share."""

from __future__ import annotations

import torch

from edgest.quantization import output_path


class _Head(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.body(x)).mean((2, 3))
        return self.fc(y).reshape(1, 2)


def _graph() -> torch.fx.Graph:
    program = torch.export.export(_Head().eval(), (torch.randn(1, 3, 8, 8),))
    return program.graph


def _names(nodes: list) -> list[str]:
    return [str(n.target) for n in nodes]


def test_walk_passes_through_what_the_target_names_and_stops_at_the_first_layer() -> None:
    graph = _graph()
    reshapes = {"aten.reshape.default", "aten.view.default"}
    assert _names(output_path(graph, lambda n: str(n.target) in reshapes)) in (
        ["aten.reshape.default", "aten.linear.default"], ["aten.view.default", "aten.linear.default"])


def test_walk_goes_further_when_the_target_passes_through_more() -> None:
    graph = _graph()
    through = {"aten.reshape.default", "aten.view.default", "aten.linear.default", "aten.mean.dim"}
    names = _names(output_path(graph, lambda n: str(n.target) in through))
    assert names[-2:] == ["aten.mean.dim", "aten.relu.default"]  # stops at relu; placeholders/params never listed
    assert all(n.startswith("aten.") for n in names) and len(names) == len(set(names))


def test_walk_of_a_graph_whose_output_is_an_input_is_empty() -> None:
    program = torch.export.export(torch.nn.Identity(), (torch.randn(2),))
    assert output_path(program.graph, lambda n: True) == []
