"""``edgest debug`` on ONNX artifacts: planted faults (edgest.testing.faults) are named by their PyTorch module."""

from __future__ import annotations

import importlib.util

import pytest

import edgest
from edgest.debug import debug_run
from edgest.plugins import new_plugin_manager
from edgest.testing import faults

onnx_plugin = pytest.importorskip("edgest_onnx.plugin", reason="edgest-onnx not installed (pip install -e targets/onnx)")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")


@pytest.fixture(scope="module")
def registry():
    pm = new_plugin_manager(entry_points=False)
    pm.add(onnx_plugin, "onnx")
    pm.add(faults, "faults")
    return pm.registry


def test_a_scaled_conv_is_named(registry, tmp_path) -> None:
    edgest.compile("debug_net", "onnx", passes=[("scale-weight", {"module": "blocks.1.conv", "factor": 1.5})],
                   out_dir=tmp_path / "run", samples=2, latency=None, registry=registry)
    result = debug_run(tmp_path / "run", registry=registry)
    assert result.culprit == "blocks.1.conv", result.verdict
    assert result.module("blocks.0").sqnr_db > 100  # float ONNX agrees with eager before the fault
    # the exporter renamed adaptive_avg_pool2d (ReduceMean 'mean'): found by the module recorded on the node
    assert result.module("pool") is not None and not result.not_exposed


def test_an_int8_layer_that_quantises_badly_is_named(registry, tmp_path) -> None:
    report = edgest.compile("debug_net_bad_int8", "onnx", precision="int8", out_dir=tmp_path / "run", samples=2,
                            latency=None, registry=registry, passes=[("quantize", {"calibration_size": 4})])
    assert report.status == "failed"
    result = debug_run(tmp_path / "run", registry=registry)
    assert result.culprit == "blocks.1.conv", result.verdict
    assert result.module("blocks.0").sqnr_db > 25 and result.module("blocks.1.conv").sqnr_db < 5
