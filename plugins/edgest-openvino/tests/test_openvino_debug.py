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
    32.4 dB named 'stem.0' at 0.8 dB the culprit; this net: '0' at -12.8 dB)."""
    pytest.importorskip("nncf", reason="nncf not installed (pip install -e plugins/edgest-openvino)")
    faults.debug_folded_batch_norm("openvino", tmp_path / "run")
