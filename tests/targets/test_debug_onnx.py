"""``edgest debug`` on ONNX Runtime: the planted faults of :mod:`edgest.testing.faults` named through real runtimes."""

from __future__ import annotations

import importlib.util

import pytest

from edgest.testing import faults

onnx_plugin = pytest.importorskip("edgest_onnx.plugin", reason="edgest-onnx not installed (pip install -e targets/onnx)")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")


@pytest.fixture(scope="module")
def registry():
    return faults.registry_with(onnx_plugin, "onnx")


def test_a_scaled_conv_is_named(registry, tmp_path) -> None:
    result = faults.debug_scaled_conv("onnx", registry, tmp_path / "run")
    # the exporter renamed adaptive_avg_pool2d (ReduceMean 'mean'): found by the module recorded on the node
    assert result.module("pool") is not None and not result.not_exposed


def test_an_int8_layer_that_quantises_badly_is_named(registry, tmp_path) -> None:
    faults.debug_bad_int8_layer("onnx", registry, tmp_path / "run")
