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


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_batch_norm_folded_into_the_conv_of_the_module_before_is_no_culprit(precision, tmp_path) -> None:
    """EMOv2's fp32 ONNX file: the exporter folds a layer scale and the next block's BatchNorm into a conv that keeps
    its own output name; `edgest debug` named that conv (-5 dB) on a run that passed at 123 dB. At int8 the file's
    readers read it through QuantizeLinear → DequantizeLinear, and ORT's quantizer gives the next Conv the name of
    the ReLU it drops (module '1' read -4.8 dB: its conv's value, not its ReLU's)."""
    result = faults.debug_fold_across_modules("onnx", tmp_path / "run", precision)
    compared = {m.module: m.sqnr_db for m in result.modules}
    assert compared["1.norm"] > (100 if precision == "fp32" else 25) and "0.conv" not in compared
    assert {"0.conv", "0"} <= set(result.not_exposed)
    assert ("1" in result.not_exposed) == (precision == "int8")  # its ReLU's value is in no tensor of the QDQ file


def test_a_relu_ort_dropped_after_a_transpose_is_not_compared_as_the_value_before_it(tmp_path) -> None:
    """LMUFormer's LMU cell ends W_h → transpose → ReLU; ORT's quantizer drops the ReLU and gives the Transpose (of
    the cell itself, the ReLU's parent module) its name, so the cell's output read -1.8 dB on a run that passed at
    41 dB. The tensor is what the ReLU read: the cell is not compared, and no module is named."""
    import edgest
    from edgest.debug import debug_run

    report = edgest.compile("lmuformer_tiny", "onnx", precision="int8", out_dir=tmp_path / "run", samples=2, latency=None)
    assert report.status == "passed", report.error
    result = debug_run(tmp_path / "run", write=False)
    compared = {m.module: m.sqnr_db for m in result.modules}
    assert result.culprit is None and min(compared.values()) > 15, (result.verdict, compared)
    assert "blocks.0.attn.lmu" in result.not_exposed and compared["blocks.0.attn.lmu.W_h"] > 15
