"""Rewrites of a captured program around converter faults that more than one target meets.

``add``/``sub`` with ``alpha`` (``x.add(y, alpha=0.5)``, ``x + 0.5 * y``) is core ATen, so it reaches
every converter as it is; some read only the two operands and compute ``x + y``. Measured on
``x.add(x.flip(-1), alpha=0.5).sub(x.roll(1, -1), alpha=2.0)`` (fp32, 4 random inputs): TVM 0.27's
Relax frontend 4.7 dB, coreai-torch 0.4.3 wrong likewise (the spiking LMUFormer's neurons decay their
membrane that way: its fp32 Core AI asset read 0.9 dB), coremltools 9 too (its add/sub/rsub converters
read only positional inputs); litert-torch 0.10 refuses the keyword; ONNX, ExecuTorch, OpenVINO and
AOTInductor exact. TVM, Core AI, Core ML and LiteRT apply the rewrite. :func:`alpha_as_mul` rewrites them as ``x + mul(y, alpha)``.

``rsub`` (``torch.rsub(x, y, alpha=a)``, ``y - a * x``) scales its *first* operand; TVM 0.27 drops that
alpha as well (``bench/scalar_args_sweep.py``: 5 dB). It is rewritten as ``rsub(mul(x, a), y)``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: binary ops whose ``alpha`` (``x + alpha * y``) a converter may drop
ALPHA_OPS = ("aten.add.Tensor", "aten.add.Scalar", "aten.sub.Tensor", "aten.sub.Scalar", "aten.rsub.Tensor",
             "aten.rsub.Scalar")


#: node metadata the inserted ``mul`` takes from the op it serves (source line and module, for reports)
SOURCE_META = ("stack_trace", "nn_module_stack", "source_fn_stack")


def _alpha(node: Any) -> Any:
    """``node``'s ``alpha`` when it is one of :data:`ALPHA_OPS` with an alpha other than 1, else None."""
    if node.op != "call_function" or str(node.target) not in ALPHA_OPS:
        return None
    alpha = node.kwargs.get("alpha", node.args[2] if len(node.args) > 2 else 1)
    return None if alpha == 1 else alpha


def scaled_operands(program: torch.export.ExportedProgram) -> int:
    """How many ``add``/``sub``/``rsub`` nodes of ``program`` scale an operand by an ``alpha`` other than 1."""
    return sum(_alpha(n) is not None for n in program.graph.nodes)


def alpha_as_mul(program: torch.export.ExportedProgram) -> int:
    """Rewrite ``add/sub(x, y, alpha=a)`` (a != 1) in ``program`` as ``add/sub(x, mul(y, a))``, and
    ``rsub(x, y, alpha=a)`` as ``rsub(mul(x, a), y)``, in place; how many."""
    import torch

    graph, count = program.graph, 0
    for node in list(graph.nodes):
        alpha = _alpha(node)
        if alpha is None:
            continue
        args = list(node.args[:2])
        i = 0 if "rsub" in str(node.target) else 1  # the operand alpha scales
        with graph.inserting_before(node):
            if isinstance(args[i], torch.fx.Node):
                scaled = graph.call_function(torch.ops.aten.mul.Tensor, (args[i], alpha))
                scaled.meta = {**{k: v for k, v in node.meta.items() if k in SOURCE_META},
                               **{k: v for k, v in args[i].meta.items() if k == "val"}}
            else:
                scaled = args[i] * alpha
        args[i] = scaled
        node.args = tuple(args)
        node.kwargs = {k: v for k, v in node.kwargs.items() if k != "alpha"}
        count += 1
    if count:
        program.graph_module.recompile()
    return count


def without_alpha(program: torch.export.ExportedProgram) -> tuple[torch.export.ExportedProgram, int]:
    """``program`` itself when no ``add``/``sub``/``rsub`` scales by ``alpha``; else a copy with :func:`alpha_as_mul` applied."""
    if not scaled_operands(program):
        return program, 0
    fixed = copy.deepcopy(program)
    return fixed, alpha_as_mul(fixed)
