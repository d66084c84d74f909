"""What marks a program as quantised: the quantize/dequantize ops a program quantizer leaves (edgest.quantize.marks)."""

from __future__ import annotations

import torch
from torch.ao.quantization.fx import _decomposed  # noqa: F401 - registers torch.ops.quantized_decomposed

from edgest.quantize.marks import is_quantized, qdq_targets


def _module(*ops: object) -> torch.fx.GraphModule:
    g = torch.fx.Graph()
    value = g.placeholder("x")
    for op, args in ops:
        value = g.call_function(op, (value, *args))
    g.output(value)
    return torch.fx.GraphModule(torch.nn.Module(), g)


def test_the_qdq_ops_are_named_in_graph_order_and_mark_the_program() -> None:
    qd = torch.ops.quantized_decomposed
    quantized = _module((torch.ops.aten.relu.default, ()),
                        (qd.quantize_per_tensor.default, (0.1, 0, -128, 127, torch.int8)),
                        (qd.dequantize_per_tensor.default, (0.1, 0, -128, 127, torch.int8)))
    assert qdq_targets(quantized) == ["quantized_decomposed.quantize_per_tensor.default",
                                      "quantized_decomposed.dequantize_per_tensor.default"]
    assert is_quantized(quantized)
    plain = _module((torch.ops.aten.relu.default, ()))
    assert qdq_targets(plain) == [] and not is_quantized(plain)
    exported = torch.export.export(torch.nn.ReLU(), (torch.randn(2),))
    assert qdq_targets(exported) == [] and not is_quantized(exported)  # a program is read through its graph
