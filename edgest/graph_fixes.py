"""Rewrites of a captured program around converter faults that more than one target meets.

``add``/``sub`` with ``alpha`` (``x.add(y, alpha=0.5)``, ``x + 0.5 * y``) is core ATen, so it reaches
every converter as it is; some read only the two operands and compute ``x + y``. Measured on
``x.add(x.flip(-1), alpha=0.5).sub(x.roll(1, -1), alpha=2.0)`` (fp32, 4 random inputs): TVM 0.27's
Relax frontend 4.7 dB, coreai-torch 0.4.3 wrong likewise (the spiking LMUFormer's neurons decay their
membrane that way: its fp32 Core AI asset read 0.9 dB); ONNX, ExecuTorch, OpenVINO, LiteRT, Core ML
and AOTInductor exact. :func:`alpha_as_mul` rewrites them as ``x + mul(y, alpha)``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: binary ops whose ``alpha`` (``x + alpha * y``) a converter may drop
ALPHA_OPS = ("aten.add.Tensor", "aten.add.Scalar", "aten.sub.Tensor", "aten.sub.Scalar")


def _alpha(node: Any) -> Any:
    """``node``'s ``alpha`` when it is one of :data:`ALPHA_OPS` with an alpha other than 1, else None."""
    if node.op != "call_function" or str(node.target) not in ALPHA_OPS:
        return None
    alpha = node.kwargs.get("alpha", node.args[2] if len(node.args) > 2 else 1)
    return None if alpha == 1 else alpha


def scaled_operands(program: torch.export.ExportedProgram) -> int:
    """How many ``add``/``sub`` nodes of ``program`` scale their second operand by an ``alpha`` other than 1."""
    return sum(_alpha(n) is not None for n in program.graph.nodes)


def alpha_as_mul(program: torch.export.ExportedProgram) -> int:
    """Rewrite ``add/sub(x, y, alpha=a)`` (a != 1) in ``program`` as ``add/sub(x, mul(y, a))``, in place; how many."""
    import torch

    graph, count = program.graph, 0
    for node in list(graph.nodes):
        alpha = _alpha(node)
        if alpha is None:
            continue
        x, y = node.args[:2]
        with graph.inserting_before(node):
            if isinstance(y, torch.fx.Node):
                scaled = graph.call_function(torch.ops.aten.mul.Tensor, (y, alpha))
                scaled.meta = {k: v for k, v in y.meta.items() if k == "val"}
            else:
                scaled = y * alpha
        node.args = (x, scaled)
        node.kwargs = {k: v for k, v in node.kwargs.items() if k != "alpha"}
        count += 1
    if count:
        program.graph_module.recompile()
    return count


def without_alpha(program: torch.export.ExportedProgram) -> tuple[torch.export.ExportedProgram, int]:
    """``program`` itself when no ``add``/``sub`` scales by ``alpha``; else a copy with :func:`alpha_as_mul` applied."""
    if not scaled_operands(program):
        return program, 0
    fixed = copy.deepcopy(program)
    return fixed, alpha_as_mul(fixed)
