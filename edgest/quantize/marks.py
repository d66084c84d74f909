"""Whether a captured program was quantised: the quantize/dequantize ops a program quantizer leaves in it.

PT2E (``convert_pt2e``) and NNCF's Torch FX backend both write torch's ``quantized_decomposed`` ops
(``quantize_per_tensor``, ``dequantize_per_channel``, ``choose_qparams`` for dynamic activations, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: the namespace of the quantize/dequantize ops a program quantizer leaves in the graph
QDQ_NAMESPACE = "quantized_decomposed."


def qdq_targets(program: torch.export.ExportedProgram | torch.fx.GraphModule) -> list[str]:
    """The quantize/dequantize ops ``program`` (or a graph module) calls, one name per node, in graph order
    (``quantized_decomposed.quantize_per_tensor.default``, ...)."""
    return [str(n.target) for n in program.graph.nodes if n.op == "call_function" and QDQ_NAMESPACE in str(n.target)]


def is_quantized(program: torch.export.ExportedProgram | torch.fx.GraphModule) -> bool:
    """Whether ``program`` (or a graph module) holds quantize/dequantize ops (a quantize pass ran on it)."""
    return bool(qdq_targets(program))
