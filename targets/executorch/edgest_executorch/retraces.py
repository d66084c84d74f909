"""ExecuTorch passes that found nothing to rewrite, not re-traced again.

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
  so the re-trace itself could only rebuild the same graph;
* the graph is, node for node (op, target, arguments, and each input's shape and dtype), one that
  a re-trace earlier in the same lowering produced, so its metadata is already what a re-trace
  would give it.

Everything else re-traces as before. On full SqueezeTime int8 the lowering took 112.3 s without and
89.5 s with it, and the ``.pte`` was byte-identical (``bench/executorch_retraces.py`` reruns that
comparison over models and precisions).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
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
    """While inside, a re-trace that could not change the graph is skipped (see the module docstring).

    Nested use is the outer one's; ``ExportPass.call`` is restored on the way out, however it is left.
    """
    from executorch.exir.pass_base import ExportPass
    from torch.fx.passes.infra.pass_base import PassResult

    retrace = ExportPass.call
    if getattr(retrace, "_edgest_skips_unchanged", False):
        yield
        return
    retraced: set[str] = set()  # signatures of graphs a re-trace in this lowering produced

    def call(self: Any, graph_module: Any) -> Any:
        if retraced and rewrites_only_by_hand(type(self)) and graph_signature(graph_module) in retraced:
            return PassResult(graph_module, False)
        result = retrace(self, graph_module)
        retraced.add(graph_signature(result.graph_module))
        return result

    call._edgest_skips_unchanged = True  # type: ignore[attr-defined]
    ExportPass.call = call  # type: ignore[method-assign]
    try:
        yield
    finally:
        ExportPass.call = retrace  # type: ignore[method-assign]
