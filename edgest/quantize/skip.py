"""What program quantizers keep float: ``--quant-skip`` modules, and the path from the last layer to the outputs.

Every PT2E-style quantizer (ExecuTorch, LiteRT, Core AI, a third party's) reads the same node metadata
(``nn_module_stack``), so the lookup and its one-line error live here, in the contract's package.
:func:`output_path` walks back from a graph's outputs; each target says which ops the walk passes
through (its own op names: ATen overloads, or coreai-opt's packets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from edgest.errors import BadInput


def module_names(graph: Any) -> set[str]:
    """Every module path (``layer1.0.conv1``) that a node of ``graph`` was traced in."""
    return {fqn for node in graph.nodes for fqn, _ in (node.meta.get("nn_module_stack") or {}).values() if fqn}


def in_modules(node: Any, skip: Sequence[str]) -> bool:
    """Whether ``node`` was traced inside one of the modules ``skip`` names (or one of their children)."""
    return any(fqn == s or fqn.startswith(s + ".")
               for fqn, _ in (node.meta.get("nn_module_stack") or {}).values() for s in skip)


def skipped_nodes(graph: Any, skip: Sequence[str]) -> set[str]:
    """Names of ``graph``'s nodes traced inside a ``--quant-skip`` module (:func:`in_modules`); empty without ``skip``."""
    return {n.name for n in graph.nodes if in_modules(n, skip)} if skip else set()


def check_skip(graph: Any, skip: Sequence[str]) -> None:
    """BadInput naming a ``--quant-skip`` module that is not in the model, with a few that are."""
    known = module_names(graph)
    for name in skip:
        if not any(k == name or k.startswith(name + ".") for k in known):
            examples = ", ".join(sorted(known, key=lambda k: (k.count("."), k))[:4])
            raise BadInput(f"--quant-skip '{name}' is not a module of the model; e.g. {examples}")


def output_path(graph: Any, passes_through: Callable[[Any], bool]) -> list[Any]:
    """Every ``call_function`` node reached back from ``graph``'s outputs, continuing through those ``passes_through`` accepts.

    The first node the walk does not pass through (the layer that computes an output) is included
    and ends that branch; placeholders and constants end it too. Each node appears once.
    """
    found: dict[Any, None] = {}
    todo = [a for n in graph.nodes if n.op == "output" for a in n.all_input_nodes]
    while todo:
        node = todo.pop()
        if node.op != "call_function" or node in found:
            continue
        found[node] = None
        if passes_through(node):
            todo.extend(node.all_input_nodes)
    return list(found)
