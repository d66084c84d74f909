"""ExecuTorch passes that work inside the re-trace on a few ops only, and whether a graph holds any of those ops.

Such a pass overrides ``ExportPass.call_operator`` alone and hands every op but a few to ``ExportPass``'s own:
``SymToTensorPass`` rewrites arguments that are symbolic values, ``NormalizeTransposePass`` ``aten.t``,
``ReplaceBrokenOpsWithFunctionalOpsPass`` view ops, ``MemoryFormatOpsPass`` and ``DimOrderOpsRevertPass`` the ops
of their maps. On a graph without those, its re-trace is ``ExportPass``'s plain re-trace, which on a graph an earlier
re-trace produced rebuilds the same graph; :mod:`edgest_executorch.retraces` skips it then. ExecuTorch runs them
on every lowering; skipping the ones with nothing to rewrite took full ViViT-Ti's fp32 lowering from 16.4 to 14.7 s
and EMOv2-1M's from 17.9 to 17.5 s, ``.pte`` byte-identical (``python bench/executorch_retraces.py --models
vivit_fa_ti,emov2_1m --precisions fp32 --baseline passthrough``; AMD EPYC, 2 cores).

:func:`has_no_work` is exact only while each listed class still overrides ``call_operator`` alone and rewrites
what its test looks for; ``tests/targets/test_executorch_retraces.py`` checks both against the installed ExecuTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["PASSTHROUGH_PASSES", "has_no_work", "is_operator", "operator_targets"]


def is_operator(target: Any) -> bool:
    """Whether a re-trace hands a call of ``target`` to ``call_operator`` (an op overload or edge op)."""
    import torch
    from executorch.exir.dialects.edge._ops import EdgeOpOverload

    return isinstance(target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket, EdgeOpOverload))


def operator_targets(graph: Any) -> Iterator[Any]:
    """The targets of ``graph``'s nodes that a re-trace hands to ``call_operator``."""
    return (n.target for n in graph.nodes if n.op == "call_function" and is_operator(n.target))


def _no_symbolic_values(graph: Any) -> bool:
    """No node yields a SymInt, SymFloat or SymBool (and every node but the output has its value recorded)."""
    import torch

    symbolic = (torch.SymInt, torch.SymFloat, torch.SymBool)
    return all(n.op == "output" or ("val" in n.meta and not isinstance(n.meta["val"], symbolic))
               for n in graph.nodes)


def _no_transpose(graph: Any) -> bool:
    import torch

    return all(t is not torch.ops.aten.t.default for t in operator_targets(graph))


def _no_view_op(graph: Any) -> bool:
    return all(getattr(t, "is_view", True) is False for t in operator_targets(graph))


def _none_of(table_name: str) -> Callable[[Any], bool]:
    def test(graph: Any) -> bool:
        from executorch.exir.passes import memory_format_ops_pass

        table = getattr(memory_format_ops_pass, table_name)
        return all(t not in table for t in operator_targets(graph))

    test.__doc__ = f"No op of ExecuTorch's ``{table_name}``."
    return test


#: (module, class) of each pass, and the test that a graph holds nothing it rewrites
PASSTHROUGH_PASSES: dict[tuple[str, str], Callable[[Any], bool]] = {
    ("executorch.exir.passes.sym_to_tensor_pass", "SymToTensorPass"): _no_symbolic_values,
    ("executorch.exir.passes.normalize_transpose_pass", "NormalizeTransposePass"): _no_transpose,
    ("executorch.exir.passes.replace_broken_ops_with_function_ops_pass", "ReplaceBrokenOpsWithFunctionalOpsPass"):
        _no_view_op,
    ("executorch.exir.passes.memory_format_ops_pass", "MemoryFormatOpsPass"): _none_of("DimOrderOpsMap"),
    ("executorch.exir.passes.memory_format_ops_pass", "DimOrderOpsRevertPass"): _none_of("MemoryFormatOpsMap"),
}


def _higher_order(graph: Any) -> bool:
    import torch

    return any(n.op == "call_function" and isinstance(n.target, torch._ops.HigherOrderOperator) for n in graph.nodes)


def has_no_work(pass_: Any, graph_module: Any) -> bool:
    """Whether ``pass_`` is one of :data:`PASSTHROUGH_PASSES` (its exact class) and ``graph_module`` holds nothing
    it rewrites; a graph with control flow never qualifies (its branches are not looked at)."""
    cls = type(pass_)  # a subclass has another module or qualified name: not listed
    test = PASSTHROUGH_PASSES.get((cls.__module__, cls.__qualname__))
    if test is None:
        return False
    return not _higher_order(graph_module.graph) and test(graph_module.graph)
