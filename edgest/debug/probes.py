"""Probe points for ``edgest debug``: the output tensor of each PyTorch module, found in any graph.

A module's output is the *last* value computed inside the module that something outside it reads
(a node of another module, or the graph's output). The rule needs only, per node in graph order,
its name, the dotted path of the innermost module it came from, and the names it reads, so the
same function finds module outputs in the captured program (``nn_module_stack``), in a graph a
toolchain decomposed from it, or in a file whose nodes carry their module path (a target's own
graph). :func:`program_probes` applies it to a captured program; targets call :func:`module_exits`
on their own graphs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Probe:
    """One point to compare: the output of the module at ``module`` (dotted path, like ``blocks.0.conv``).

    ``node`` names the captured program's node that computes it (the program the target lowered),
    ``kind`` is the module's class name and ``shape`` the tensor's shape.
    """

    module: str
    node: str
    kind: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class GraphNode:
    """What :func:`module_exits` needs to know of one node: its name, module path ('' for none) and inputs."""

    name: str
    module: str
    inputs: tuple[str, ...]


def inside(module: str, name: str) -> bool:
    """Whether ``module`` is the module ``name`` or nested in it (``blocks.0.conv`` is in ``blocks.0``, not ``blocks.01``)."""
    return bool(name) and (module == name or module.startswith(name + "."))


def _enclosing(module: str) -> list[str]:
    """``a.b.c`` → ``["a", "a.b", "a.b.c"]`` (the top module, '', is no probe)."""
    parts = module.split(".") if module else []
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def module_exits(nodes: Sequence[GraphNode], outputs: Iterable[str] = ()) -> dict[str, str]:
    """Module path → name of the node holding the module's output, for every module of ``nodes`` (in graph order).

    That node is the last one inside the module whose value a node outside it, or the graph
    output (``outputs``), reads. A module called twice gets its last call's output.
    """
    readers: dict[str, list[str]] = {}
    for n in nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n.module)
    out_names = set(outputs)
    exits: dict[str, str] = {}
    for n in nodes:
        users = readers.get(n.name, [])
        for module in _enclosing(n.module):
            if n.name in out_names or any(not inside(u, module) for u in users):
                exits[module] = n.name
    return exits


def innermost(node: Any) -> str:
    """The dotted path of the innermost module an FX node was traced in ('' for the top module or none)."""
    stack = node.meta.get("nn_module_stack") or {}
    return str(list(stack.values())[-1][0] or "") if stack else ""


def fx_nodes(graph: torch.fx.Graph) -> tuple[list[GraphNode], list[str]]:
    """The call nodes of an FX graph as :class:`GraphNode` (in order), and the names its output reads."""
    nodes, outputs = [], []
    for n in graph.nodes:
        reads = tuple(a.name for a in n.all_input_nodes)
        if n.op == "call_function":
            nodes.append(GraphNode(n.name, innermost(n), reads))
        elif n.op == "output":
            outputs = list(reads)
    return nodes, outputs


def module_classes(graph: torch.fx.Graph) -> dict[str, str]:
    """Module path → class name, from the ``nn_module_stack`` of every node."""
    out: dict[str, str] = {}
    for n in graph.nodes:
        for path, cls in (n.meta.get("nn_module_stack") or {}).values():
            if path:
                out[path] = (cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))).rsplit(".", 1)[-1]
    return out


def program_probes(program: torch.export.ExportedProgram, eager_shapes: dict[str, tuple[int, ...]]) -> list[Probe]:
    """The probes of ``program``, in graph order (an inner module before the one around it when they share a node).

    Only modules with an eager value of the same shape (``eager_shapes``, from
    :func:`edgest.debug.eager.module_outputs`) are kept: a module returning a tuple, or one a
    pass replaced, has nothing to compare with.
    """
    graph = program.graph
    nodes, outputs = fx_nodes(graph)
    exits = module_exits(nodes, outputs)
    position = {n.name: i for i, n in enumerate(nodes)}
    vals = {n.name: n.meta.get("val") for n in graph.nodes}
    classes = module_classes(graph)
    probes = []
    for module, node in exits.items():
        shape = tuple(getattr(vals.get(node), "shape", ()) or ())
        if module in eager_shapes and tuple(eager_shapes[module]) == shape:
            probes.append(Probe(module, node, classes.get(module, ""), shape))
    return sorted(probes, key=lambda p: (position[p.node], -p.module.count(".")))
