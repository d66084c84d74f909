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


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_port_that_holds_a_folded_op_s_value_is_not_compared_as_the_conv_it_is_named_after(precision, tmp_path) -> None:
    """OpenVINO folds a layer scale into the conv before it (the port carries both names) and a depthwise conv's
    BatchNorm scale into it (a rebuilt conv keeps only its own name, for a value that is neither): EMOv2's fp32 IR
    named 'stage0.1.conv' at -5.7 dB the culprit of a run that passed at 121 dB; this net: '2.conv' at -1.3 dB."""
    if precision == "int8":
        pytest.importorskip("nncf", reason="nncf not installed (pip install -e plugins/edgest-openvino)")
    result = faults.debug_fold_across_modules("openvino", tmp_path / "run", precision)
    assert "0.conv" in result.not_exposed and result.module("1.norm") is not None
    if precision == "fp32":
        assert "2.conv" in result.not_exposed and result.module("2.norm").sqnr_db > 100
