"""``edgest debug`` on OpenVINO IR: planted faults (edgest.testing.faults) are named by their PyTorch module."""

from __future__ import annotations

import pytest
from edgest_openvino import plugin as openvino_plugin

import edgest
from edgest.debug import debug_run
from edgest.plugins import new_plugin_manager
from edgest.testing import faults


@pytest.fixture(scope="module")
def registry():
    pm = new_plugin_manager(entry_points=False)
    pm.add(openvino_plugin, "openvino")
    pm.add(faults, "faults")
    return pm.registry


def test_a_scaled_conv_is_named(registry, tmp_path) -> None:
    edgest.compile("debug_net", "openvino", passes=[("scale-weight", {"module": "blocks.1.conv", "factor": 1.5})],
                   out_dir=tmp_path / "run", samples=2, latency=None, registry=registry)
    result = debug_run(tmp_path / "run", registry=registry)
    assert result.culprit == "blocks.1.conv", result.verdict
    assert result.module("blocks.0").sqnr_db > 100
    # IR tensors are named after the frontend's own decomposition (convolution_2:0), not edgest's nodes
    assert result.module("blocks.1.conv").node == "conv2d_2" and not result.not_exposed


def test_an_int8_layer_that_quantises_badly_is_named(registry, tmp_path) -> None:
    pytest.importorskip("nncf", reason="nncf not installed (pip install -e plugins/edgest-openvino)")
    report = edgest.compile("debug_net_bad_int8", "openvino", precision="int8", out_dir=tmp_path / "run", samples=2,
                            latency=None, registry=registry, passes=[("quantize", {"calibration_size": 4})])
    assert report.status == "failed"
    result = debug_run(tmp_path / "run", registry=registry)
    assert result.culprit == "blocks.1.conv", result.verdict
    assert result.module("blocks.0").sqnr_db > 25 and result.module("blocks.1.conv").sqnr_db < 5
