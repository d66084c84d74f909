"""PT2E annotation patterns captured non-strict, once per process (edgest.quantize.patterns)."""

from __future__ import annotations

import types
from typing import ClassVar

import pytest
import torch
from torch import nn

from edgest.quantize import patterns
from edgest.quantize.patterns import fast_pattern_graphs, pattern_graph, pattern_key


def _factory(fn):
    class Pattern(nn.Module):
        def forward(self, x):
            return fn(x)

    return Pattern()


class Wrapper(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def _conv_bn(conv_fn, inplace):
    def pattern(x, w, b, bn_w, bn_b, rm, rv):
        y = torch.nn.functional.batch_norm(conv_fn(x, w, b), rm, rv, bn_w, bn_b, training=True)
        return torch.nn.functional.relu_(y) if inplace else torch.nn.functional.relu(y)

    return Wrapper(pattern)


X = (torch.randn(1, 3),)


def test_the_key_tells_patterns_apart_by_what_they_close_over_and_their_inputs():
    relu, relu_again, sigmoid = _factory(torch.relu), _factory(torch.relu), _factory(torch.sigmoid)
    assert pattern_key(relu, X, False) == pattern_key(relu_again, X, False)
    assert pattern_key(relu, X, False) != pattern_key(sigmoid, X, False)
    assert pattern_key(relu, X, False) != pattern_key(relu, (torch.randn(2, 3),), False)
    assert pattern_key(relu, X, False) != pattern_key(relu, X, True)
    conv = torch.nn.functional.conv2d
    assert pattern_key(_conv_bn(conv, True), X, False) != pattern_key(_conv_bn(conv, False), X, False)


def test_a_pattern_holding_weights_or_unhashable_values_has_no_key():
    assert pattern_key(nn.Linear(3, 3), X, False) is None
    scales = [1.0]

    class Scaled(nn.Module):
        def forward(self, x):
            return x * scales[0]

    assert pattern_key(Scaled(), X, False) is None, "it closes over a list: the key could not tell two apart"


def test_the_non_strict_capture_is_the_graph_dynamo_captures():
    from torchao.quantization.pt2e.utils import _get_aten_graph_module_for_pattern

    inputs = (torch.randn(1, 1, 3, 3), torch.randn(1, 1, 1, 1), torch.randn(1), torch.randn(1), torch.randn(1),
              torch.randn(1), torch.randn(1))
    for inplace in (True, False):
        pattern = _conv_bn(torch.nn.functional.conv2d, inplace)
        strict = _get_aten_graph_module_for_pattern(pattern, inputs)
        assert str(pattern_graph(pattern, inputs).graph) == str(strict.graph)


def test_installed_capture_keeps_each_graph_hands_out_copies_and_falls_back(monkeypatch):
    calls, original_calls = [], []

    def capture(pattern, example_inputs, is_cuda=False):
        calls.append(pattern)
        if isinstance(pattern, Wrapper):
            raise RuntimeError("non-strict cannot")  # noqa: TRY004 - what an export failure raises
        return pattern_graph(pattern, example_inputs, is_cuda)

    def original(pattern, example_inputs, is_cuda=False):
        original_calls.append(pattern)
        return torch.fx.GraphModule(nn.Module(), torch.fx.Graph())

    module = types.SimpleNamespace(capture_fn=original)
    monkeypatch.setattr(patterns, "pattern_graph", capture)
    fast_pattern_graphs(module, "capture_fn")
    fast_pattern_graphs(module, "capture_fn")  # idempotent
    first, second = module.capture_fn(_factory(torch.relu), X), module.capture_fn(_factory(torch.relu), X)
    assert len(calls) == 1 and first is not second and str(first.graph) == str(second.graph)
    module.capture_fn(Wrapper(torch.relu), X)
    assert len(original_calls) == 1, "what the non-strict capture cannot take goes to the quantizer's own"


def test_xnnpack_int8_prepare_captures_its_conv_bn_patterns_non_strict():
    pytest.importorskip("executorch", reason="the XNNPACK quantizer ships with ExecuTorch (pip install -e targets/executorch)")
    from edgest_executorch.quantizer import XnnpackPT2EQuantizer
    from executorch.backends.xnnpack.quantizer import xnnpack_quantizer_utils as utils

    class Calibration:
        inputs: ClassVar[list] = [[torch.randn(1, 3, 8, 8).numpy()]]

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(),
                          nn.Linear(64, 2)).eval()
    program = torch.export.export(model, (torch.randn(1, 3, 8, 8),), strict=False)
    quantized = XnnpackPT2EQuantizer("int8").quantize_program(program, (torch.randn(1, 3, 8, 8),), Calibration, ())
    assert getattr(utils._get_aten_graph_module_for_pattern, "edgest_fast_patterns", False)
    assert quantized.details["ops_annotated"] >= 1
