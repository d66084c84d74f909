"""``GraphModule.recompile`` on a graph that has not changed since the module's last recompile, skipped.

fx's ``recompile`` generates a module's Python code from its graph and executes it again, every time it is called.
ExecuTorch's pass managers call it in their ``check``, before their passes and after them, and some passes call it
after finding nothing to change, so many recompiles while lowering rebuild the code the module already runs. Skipping those took full EMOv2-1M's fp32 lowering from
18.9 to 16.1 s and ViViT-Ti's from 16.8 to 15.1 s, ``.pte`` byte-identical (``python bench/executorch_retraces.py
--models emov2_1m,vivit_fa_ti --precisions fp32 --baseline recompiles``).

While :func:`skip_unchanged_recompiles` is active, ``recompile`` of a module this block already recompiled returns
the code it made then when the module's graph is, node for node, the one that recompile read: the same ``Graph``
object and codegen, the same nodes in the same order, each with the same ``op`` and ``name`` and the very same
``target``, ``args``, ``kwargs`` and ``type`` objects. fx replaces a node's argument tuple whenever it changes
(``Node.args`` setter, ``replace_input_with``, ``replace_all_uses_with``), and its argument containers are immutable,
so an unchanged tuple object means unchanged arguments. The generated code reads nothing else that changes what it
computes (node metadata only adds comments). A module's submodules are still checked, each on its own graph.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

__all__ = ["code_inputs", "same_code_inputs", "skip_unchanged_recompiles"]


def code_inputs(graph_module: Any) -> tuple[Any, ...]:
    """What ``graph_module``'s generated code is made from, held by reference (compare with :func:`same_code_inputs`)."""
    from torch.fx.experimental import _config as fx_config

    graph = graph_module._graph
    nodes = tuple((n, n.op, n.name, n.target, n._args, n._kwargs, n.type) for n in graph.nodes)
    return graph, graph._codegen, fx_config.enrich_profiler_metadata, nodes


def same_code_inputs(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Whether two :func:`code_inputs` readings are of the same graph, unchanged: objects compared by identity,
    the op and name strings by value."""
    (graph_a, codegen_a, flag_a, nodes_a), (graph_b, codegen_b, flag_b, nodes_b) = a, b
    if graph_a is not graph_b or codegen_a is not codegen_b or flag_a != flag_b or len(nodes_a) != len(nodes_b):
        return False
    for (n, op, name, *refs), (m, op_m, name_m, *refs_m) in zip(nodes_a, nodes_b):
        if n is not m or op != op_m or name != name_m or any(x is not y for x, y in zip(refs, refs_m)):
            return False
    return True


@contextlib.contextmanager
def skip_unchanged_recompiles() -> Iterator[None]:
    """While inside, ``GraphModule.recompile`` of a module whose graph is unchanged since its last recompile in this
    block returns that recompile's code without generating it again (see the module docstring). Nested use is the
    outer one's; ``GraphModule.recompile`` is restored on the way out, however the block is left."""
    import torch.fx

    from edgest_executorch.retraces import installed

    def make(recompile: Any) -> Any:
        made: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()

        def skipping(self: Any) -> Any:
            last = made.get(self)
            now = code_inputs(self)
            if last is not None and same_code_inputs(last[0], now):
                self._recompile_submodules()
                return last[1]
            code = recompile(self)
            made[self] = (now, code)
            return code

        return skipping

    with installed(torch.fx.GraphModule, "recompile", make):
        yield
