"""``edgest debug`` on OpenVINO IR: planted faults (edgest.testing.faults) are named by their PyTorch module."""

from __future__ import annotations

import pytest
from edgest_openvino import plugin as openvino_plugin

from edgest.testing import faults


@pytest.fixture(scope="module")
def registry():
    return faults.registry_with(openvino_plugin, "openvino")


def test_a_scaled_conv_is_named(registry, tmp_path) -> None:
    result = faults.debug_scaled_conv("openvino", registry, tmp_path / "run")
    # IR tensors are named after the frontend's own decomposition (convolution_2:0), not edgest's nodes
    assert result.module("blocks.1.conv").node == "conv2d_2" and not result.not_exposed


def test_an_int8_layer_that_quantises_badly_is_named(registry, tmp_path) -> None:
    pytest.importorskip("nncf", reason="nncf not installed (pip install -e plugins/edgest-openvino)")
    faults.debug_bad_int8_layer("openvino", registry, tmp_path / "run")


def test_int8_compares_a_folded_conv_as_its_batch_norm_and_names_no_false_culprit(tmp_path) -> None:
    """NNCF folds each BN into its conv; the conv was compared with the eager conv (squeezetime_tiny int8 at
    32.4 dB named 'stem.0' at 0.8 dB the culprit)."""
    pytest.importorskip("nncf", reason="nncf not installed (pip install -e plugins/edgest-openvino)")
    import torch

    import edgest
    from edgest.debug import debug_run

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5)).eval()
    net[1].running_mean.uniform_(-2, 2)  # a BN far from identity: conv and conv∘BN differ
    net[1].running_var.uniform_(0.1, 0.5)
    report = edgest.compile(net, "openvino", precision="int8", input_shape=(1, 3, 16, 16), out_dir=tmp_path / "run",
                            latency=None, samples=4)
    assert report.status == "passed", report.error
    result = debug_run(report.run_dir, model=net)
    compared = {m.module: m.sqnr_db for m in result.modules}
    assert result.culprit is None, (result.verdict, compared)
    assert "1" in compared and "0" not in compared and compared["1"] > 25
