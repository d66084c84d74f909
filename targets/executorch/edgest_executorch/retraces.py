"""ExecuTorch re-traces that could not change the graph, skipped: passes that found nothing to rewrite, and a
decomposition left with nothing to decompose.

Every ExecuTorch pass built on ``ExportPass`` ends by re-tracing the whole graph on fake tensors
(``ExportPass.call``: each node run again to rebuild the graph and its ``meta["val"]``). Many
passes first rewrite a pattern by hand and re-trace afterwards, whether or not they found one:
XNNPACK's preprocess runs 17 passes on every delegated graph, among them ``ConvertToSDPAPass``,
``ConvertToUpsampleBilinear2d``, ``Conv1dUnsqueezePass`` and ``PReLUReshapePass``, which on a model
without attention, upsampling, 1-D convolutions or PReLU change nothing and still re-trace it all.

While :func:`skip_unchanged_retraces` is active, ``ExportPass.call`` hands back the graph module it
was given, without re-tracing it, when both hold:

* the pass overrides none of ``ExportPass``'s interpreter hooks (``call_operator``,
  ``placeholder``, ``call_getitem``, ...): its work, if any, was done by hand before the re-trace,
  so the re-trace itself could only rebuild the same graph; or its ``call_operator`` rewrites a few
  ops only, and the graph has none of them (:mod:`edgest_executorch.passthrough`);
* the graph is, node for node (op, target, arguments, and each input's shape and dtype), one that
  a re-trace earlier in the same lowering produced, so its metadata is already what a re-trace
  would give it.

The same holds for ExecuTorch's decompositions. ``to_edge_transform_and_lower`` re-traces the
program through ``run_decompositions`` three times: to functionalise it, with the table less the ops
the partitioner keeps, and with the whole default table once those ops are set aside. The last one
finds nothing left to decompose on a program the second one made. ExecuTorch itself skips such a
call on one of its paths (``contains_any_call_fn_target_op``); :func:`decomposes_nothing` applies the
same test, on a program an earlier ``run_decompositions`` in the lowering made, with no mutating op.

Not a re-trace but the same kind of repeat: ExecuTorch's pass managers verify the program before their
passes and after each pass that reports a change, and the edge verifier's dtype check runs every op of
the graph on fake tensors each time, also on a graph it has just passed. Inside the block a graph that
passed it (same :func:`checked_signature`) passes again without the run; one that fails is checked again.

Everything else re-traces as before. On full SqueezeTime int8 the lowering took 113.1 s without both
skips and 80.3 s with them, and the ``.pte`` was byte-identical (``bench/executorch_retraces.py`` reruns
that comparison over models and precisions); the decomposition skip alone took it from 74.9 to 65.5 s
(``--baseline passes``). The coverage ``edgest check`` asks (:mod:`edgest_executorch.coverage`) runs the
same decompositions, under the same skip.
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref
from collections.abc import Callable, Iterator
from typing import Any

#: ``ExportPass`` methods a pass may override without doing any of its work inside the re-trace
_NOT_HOOKS = frozenset({"call", "requires", "ensures"})


def graph_signature(graph_module: Any) -> str:
    """A digest of the graph's structure: each node's op, target and arguments (nodes by position), and each
    input's shape and dtype. Two graphs with one digest re-trace to the same graph."""
    import torch

    index: dict[Any, int] = {}
    parts = []
    for i, node in enumerate(graph_module.graph.nodes):
        index[node] = i
        args = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: ("%", index[n]))
        val = node.meta.get("val") if node.op == "placeholder" else None
        shape = (tuple(val.shape), str(val.dtype)) if hasattr(val, "shape") and hasattr(val, "dtype") else None
        parts.append((node.op, str(node.target), repr(args), shape))
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def rewrites_only_by_hand(cls: type) -> bool:
    """Whether an ``ExportPass`` subclass leaves every interpreter hook as ``ExportPass`` has it."""
    from executorch.exir.pass_base import ExportPass

    hooks = (n for n in dir(ExportPass) if not n.startswith("__") and n not in _NOT_HOOKS
             and callable(getattr(ExportPass, n)))
    return all(getattr(cls, n, None) is getattr(ExportPass, n) for n in hooks)


@contextlib.contextmanager
def skip_unchanged_retraces() -> Iterator[None]:
    """While inside, a re-trace that could not change the graph is skipped: a pass's (see the module docstring)
    and a decomposition's (:func:`decomposes_nothing`); so is the edge verifier's dtype run on a graph it passed,
    and a recompile of a graph module whose graph has not changed (:mod:`edgest_executorch.recompiles`).

    Nested use is the outer one's; ``ExportPass.call`` and ``ExportedProgram.run_decompositions`` are restored on
    the way out, however it is left.
    """
    from edgest_executorch.recompiles import skip_unchanged_recompiles

    with (_skip_unchanged_passes(), _skip_empty_decompositions(), _skip_repeated_dtype_checks(),
          _skip_unmatchable_pattern_passes(), skip_unchanged_recompiles()):
        yield


@contextlib.contextmanager
def installed(owner: Any, name: str, make: Callable[[Any], Any]) -> Iterator[None]:
    """``owner.<name>`` replaced by ``make(original)`` while inside, restored on the way out however the block is
    left; inside another such block for the same method, the outer replacement stays."""
    original = getattr(owner, name)
    if getattr(original, "_edgest_skips_unchanged", False):
        yield
        return
    replacement = make(original)
    replacement._edgest_skips_unchanged = True
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _skip_unchanged_passes() -> contextlib.AbstractContextManager[None]:
    """``ExportPass.call`` hands back the graph it was given, without re-tracing it, for a pass that rewrites only by
    hand, or that works in the re-trace on ops the graph lacks (:mod:`edgest_executorch.passthrough`), on a graph an
    earlier re-trace in this block produced (see the module docstring)."""
    from executorch.exir.pass_base import ExportPass
    from torch.fx.passes.infra.pass_base import PassResult

    from edgest_executorch.passthrough import has_no_work

    def make(retrace: Any) -> Any:
        retraced: set[str] = set()  # signatures of graphs a re-trace in this lowering produced

        def call(self: Any, graph_module: Any) -> Any:
            if (retraced and (rewrites_only_by_hand(type(self)) or has_no_work(self, graph_module))
                    and graph_signature(graph_module) in retraced):
                return PassResult(graph_module, False)
            result = retrace(self, graph_module)
            retraced.add(graph_signature(result.graph_module))
            return result

        return call

    return installed(ExportPass, "call", make)


def decomposes_nothing(program: Any, table: Any) -> bool:
    """Whether ``program.run_decompositions(table)`` can only rebuild ``program``, given that ``program`` already
    came out of a ``run_decompositions`` (so it is functional and its remaining ops are the ones kept then):
    ``table`` is given (a dict or torch's ``CustomDecompTable``), no node (subgraphs included) calls an op in it,
    and no node calls a mutating op."""
    from executorch.exir.graph_module import (
        contains_any_call_fn_target_op,
        get_control_flow_submodules,
    )

    if not isinstance(table, dict):  # None: the default table, not built here
        return False
    if contains_any_call_fn_target_op(program.graph_module, table):
        return False
    modules = [program.graph_module]
    while modules:
        module = modules.pop()
        for node in module.graph.nodes:
            schema = getattr(node.target, "_schema", None) if node.op == "call_function" else None
            if schema is not None and schema.is_mutable:
                return False
        modules.extend(m for _, m, _ in get_control_flow_submodules(module))
    return True


def _skip_empty_decompositions() -> contextlib.AbstractContextManager[None]:
    """``ExportedProgram.run_decompositions`` hands back a program that an earlier ``run_decompositions`` in this
    block made, instead of re-tracing it, when :func:`decomposes_nothing` says the re-trace could only rebuild it."""
    from torch.export import ExportedProgram

    def make(decompose: Any) -> Any:
        made: weakref.WeakSet[Any] = weakref.WeakSet()  # programs a run_decompositions in this block returned

        def run_decompositions(self: Any, decomp_table: Any = None, *args: Any, **kwargs: Any) -> Any:
            if self in made and not args and not kwargs and decomposes_nothing(self, decomp_table):
                return self
            result = decompose(self, decomp_table, *args, **kwargs)
            made.add(result)
            return result

        return run_decompositions

    return installed(ExportedProgram, "run_decompositions", make)


def checked_signature(graph_module: Any) -> str:
    """:func:`graph_signature` plus the type, shape and dtype of each ``get_attr`` node's value: everything the
    edge verifier's dtype check reads (it runs the graph on fake inputs made from the placeholders)."""
    attrs = []
    for node in graph_module.graph.nodes:
        if node.op == "get_attr":
            value = getattr(graph_module, str(node.target), None)
            attrs.append((str(node.target), type(value).__name__, str(getattr(value, "dtype", "")),
                          tuple(getattr(value, "shape", ()))))
    return graph_signature(graph_module) + hashlib.sha1(repr(attrs).encode()).hexdigest()


def _skip_repeated_dtype_checks() -> contextlib.AbstractContextManager[None]:
    """The edge verifier's dtype check (every op run on fake tensors to compare its inputs' and outputs' dtypes
    with the edge op's allowed ones) passes at once on a graph that, by :func:`checked_signature`, already
    passed it in this block. ExecuTorch's pass managers verify the program before their passes and after
    each pass that reports a change, so an unchanged graph was checked again and again: six times in a row,
    1350 nodes each, while lowering full SqueezeTime fp32."""
    from executorch.exir.verification import verifier

    def make(check: Any) -> Any:
        passed: set[str] = set()

        def check_dtypes(graph_module: Any) -> None:
            key = checked_signature(graph_module)
            if key in passed:
                return
            check(graph_module)
            passed.add(key)

        return check_dtypes

    return installed(verifier, "_check_tensor_args_matching_op_allowed_dtype", make)


#: XNNPACK passes that rewrite what ``SubgraphMatcher`` finds of their pattern graphs, and ops every one of those
#: patterns holds (``aten::...`` names, any overload): a graph without one of them can match none of the patterns
#: (``tests/targets/test_executorch_retraces.py`` checks this list against ExecuTorch's own patterns)
PATTERN_PASSES: dict[tuple[str, str], tuple[str, ...]] = {
    # its patterns are masked attention as torch decomposes it, guarded against fully masked rows (any, where)
    ("executorch.backends.xnnpack._passes.convert_to_sdpa", "ConvertToSDPAPass"):
        ("aten::_softmax", "aten::bmm", "aten::any", "aten::logical_not"),
    ("executorch.backends.xnnpack._passes.convert_to_upsample_bilinear2d", "ConvertToUpsampleBilinear2d"):
        ("aten::upsample_bilinear2d",),
}


def lacks_any(graph: Any, ops: tuple[str, ...]) -> bool:
    """Whether ``graph`` has no call of at least one of ``ops`` (``aten::`` names)."""
    # name() is "aten::bmm" for a default overload, "aten::upsample_bilinear2d.vec" for another
    present = {n.target.name().split(".")[0] for n in graph.nodes if n.op == "call_function" and hasattr(n.target, "name")}
    return any(op not in present for op in ops)


def _skip_unmatchable_pattern_passes() -> contextlib.AbstractContextManager[None]:
    """A pass of :data:`PATTERN_PASSES` on a graph that lacks an op its every pattern holds does only what it does
    after matching nothing: the re-trace (itself under :func:`_skip_unchanged_passes`). Not building and matching
    the patterns saves their first build in a process, a ``torch.export`` and edge lowering of each, on every model
    without masked attention (XNNPACK's SDPA patterns all take a mask) or bilinear upsampling: a cold full SqueezeTime fp32 compile lowered in 20.4 / 20.5 s before
    and 17.3 / 18.4 s after, 34.0 / 34.3 -> 31.2 / 32.6 s in all (``python bench/compile_time.py --models
    squeezetime --targets executorch --precisions fp32``, twice each, in turns; AMD EPYC, 2 cores)."""
    import importlib

    from torch.fx.passes.infra.pass_base import PassResult

    stack = contextlib.ExitStack()
    for (module, name), ops in PATTERN_PASSES.items():
        owner = getattr(importlib.import_module(module), name)

        def make(match: Any, owner: type = owner, ops: tuple[str, ...] = ops) -> Any:
            def call(self: Any, graph_module: Any) -> Any:
                if not lacks_any(graph_module.graph, ops):
                    return match(self, graph_module)
                graph_module.recompile()
                return PassResult(super(owner, self).call(graph_module).graph_module, True)

            return call

        stack.enter_context(installed(owner, "call", make))
    return stack
