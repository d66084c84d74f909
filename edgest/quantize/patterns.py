"""PT2E annotation patterns captured without Dynamo, once per process.

PT2E quantizers (ExecuTorch's XNNPACK and Core ML quantizers) find what to annotate by capturing
each of their pattern callables with torchao's ``_get_aten_graph_module_for_pattern`` on every
``prepare_pt2e``, through ``torch.export.export(strict=True)``, that is Dynamo. The Core ML
quantizer captures 405 patterns that way whatever the model: 73 s on a 2-core AVX2 host, against
13 s captured non-strict, and all 405 graphs identical (``bench/pattern_capture.py`` measures and
compares them). Apple's own successor quantizer (``coreai_opt``) made the same switch.

:func:`pattern_graph` is torchao's capture with ``strict=False``; :func:`fast_pattern_graphs`
puts it, with a per-process cache, in place of a quantizer module's capture function;
:func:`no_qat_conv_bn_fold` skips the one pattern search post-training quantisation never needs.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Hashable, Iterator
from typing import Any

#: attribute marking a capture function this module installed
_MARK = "edgest_fast_patterns"


def pattern_graph(pattern: Callable[..., Any], example_inputs: tuple[Any, ...], is_cuda: bool = False,
                  **kwargs: Any) -> Any:
    """``torchao.quantization.pt2e.utils._get_aten_graph_module_for_pattern`` with a non-strict export: the
    pattern's ATen graph, dead code and the ``copy_`` nodes of mutated inputs removed, as torchao leaves it."""
    import torch

    if is_cuda:
        example_inputs = tuple(x.cuda() if isinstance(x, torch.Tensor) else x for x in example_inputs)
    program = torch.export.export(pattern, example_inputs, kwargs, strict=False)  # type: ignore[arg-type]
    try:  # no _guards_fn call in the graph: the subgraph matcher would look for it in the model
        module = program.module(check_guards=False)
    except TypeError:  # torch before 2.9 adds no guard call
        module = program.module()
    module.graph.eliminate_dead_code()
    module.recompile()
    for node in list(module.graph.nodes):
        if node.op == "call_function" and node.target == torch.ops.aten.copy_.default and not node.users:
            module.graph.erase_node(node)
    module.graph.eliminate_dead_code()
    module.recompile()
    return module


def pattern_key(pattern: Any, example_inputs: tuple[Any, ...], is_cuda: bool) -> Hashable | None:
    """What a pattern's graph depends on: its class and ``forward`` (or function), what they close over, a
    wrapped function's (``WrapperModule(fn)``), and the inputs' shapes and dtypes. None when that cannot be
    told (a pattern holding tensors, submodules or unhashable values): such a pattern is captured every time."""
    try:
        key = _key(pattern, example_inputs, is_cuda)
        hash(key)
    except (TypeError, ValueError):  # unhashable, or a closure cell not filled yet
        return None
    return key


def _key(pattern: Any, example_inputs: tuple[Any, ...], is_cuda: bool) -> Hashable | None:
    import torch

    if isinstance(pattern, torch.nn.Module):
        if any(True for _ in pattern.children()) or any(True for _ in pattern.parameters()) or any(
                True for _ in pattern.buffers()):
            return None
        own = {k: v for k, v in vars(pattern).items() if not k.startswith("_") and k != "training"}
        if any(not callable(v) for v in own.values()):
            return None
        parts: tuple[Any, ...] = (_function_key(type(pattern).forward),
                                  *((k, _function_key(v)) for k, v in sorted(own.items())))
    else:
        parts = (_function_key(pattern),)
    return (type(pattern).__module__, type(pattern).__qualname__, parts,
            tuple((tuple(t.shape), t.dtype) if isinstance(t, torch.Tensor) else t for t in example_inputs), is_cuda)


def _function_key(fn: Any) -> tuple[Any, ...]:
    cells = getattr(fn, "__closure__", None) or ()
    return (getattr(fn, "__module__", None), getattr(fn, "__qualname__", repr(fn)),
            tuple(c.cell_contents for c in cells))


def fast_pattern_graphs(module: Any, attr: str) -> None:
    """Replace ``module.<attr>`` (a quantizer's pattern capture, called ``(pattern, example_inputs, is_cuda)``)
    by :func:`pattern_graph`, keeping each pattern's graph for the process; each caller gets its own copy.
    A pattern the non-strict export cannot capture goes to the original function. Idempotent."""
    original = getattr(module, attr)
    if getattr(original, _MARK, False):
        return
    cache: dict[Hashable, Any] = {}

    def captured(pattern: Any, example_inputs: tuple[Any, ...], is_cuda: bool = False, **kwargs: Any) -> Any:
        key = None if kwargs else pattern_key(pattern, example_inputs, is_cuda)
        if key is not None and key in cache:
            return copy.deepcopy(cache[key])
        try:
            graph = pattern_graph(pattern, example_inputs, is_cuda, **kwargs)
        except Exception:  # noqa: BLE001 - what Dynamo can capture and non-strict cannot: the quantizer's own way
            graph = original(pattern, example_inputs, is_cuda, **kwargs)
        if key is not None:
            cache[key] = graph
            return copy.deepcopy(graph)
        return graph

    setattr(captured, _MARK, True)
    setattr(module, attr, captured)


@contextlib.contextmanager
def no_qat_conv_bn_fold() -> Iterator[None]:
    """Skip ``convert_pt2e``'s QAT conv+BN folding, which post-training quantisation never needs.

    It searches for the conv+BN pattern ``prepare_qat_pt2e`` leaves behind, and does so whenever the
    graph has a BatchNorm, tracing 96 pattern graphs first (38 of the 45 s squeezetime_tiny's LiteRT
    quantisation took on one core). After ``prepare_pt2e`` on an eval-mode program the conv+BN pairs
    are already folded and the BatchNorms left stand alone, so the search finds nothing (checked on
    squeezetime_tiny and emov2_tiny_video: identical graphs and outputs).
    """
    from unittest import mock

    import torchao.quantization.pt2e.quantize_pt2e as qp

    if not hasattr(qp, "_fold_conv_bn_qat"):  # another torchao: let convert do what it does
        yield
        return
    with mock.patch.object(qp, "_fold_conv_bn_qat", lambda model: model):
        yield
