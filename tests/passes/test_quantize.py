"""quantize: target-aware int8 (ONNX Runtime QDQ on the artifact, XNNPACK PT2E on the program), calibration, errors."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import edgest
import edgest_models.plugin
import edgest_onnx.plugin
from edgest.checks.accuracy import LIMITS
from edgest.data.calibration import calibration_inputs
from edgest.errors import BadInput, Unsupported
from edgest.passes.base import PassContext
from edgest.passes.quantize import QuantizePass
from edgest.plugins import new_plugin_manager
from edgest.records import InputSpec
from edgest.targets.eager import EagerTarget
from edgest.testing.weights import write_responsive_weights
from edgest_onnx.quantizer import choose_settings

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
VIDEO = InputSpec((1, 3, 8, 64, 64), layout="B,C,T,H,W")


@pytest.fixture(scope="module")
def registry():
    """The zoo and ONNX only: other plugins cannot break these tests."""
    pm = new_plugin_manager(entry_points=False)
    pm.add(edgest_models.plugin, "models")
    pm.add(edgest_onnx.plugin, "onnx")
    return pm.registry


# --------------------------------------------------------------------------- settings, calibration


def test_onnx_settings_follow_the_cpu():
    vnni = choose_settings({"avx2", "avx512f", "avx512_vnni"}, "x86_64")
    assert vnni["reduce_range"] is False and "avx512_vnni" in vnni["reduce_range_reason"]
    assert choose_settings({"avx2", "avx_vnni"}, "x86_64")["reduce_range"] is False
    plain = choose_settings({"avx2", "fma"}, "x86_64")
    assert plain["reduce_range"] is True and "no VNNI" in plain["reduce_range_reason"]
    assert choose_settings(set(), "aarch64")["reduce_range"] is False
    assert choose_settings(set(), "x86_64")["reduce_range"] is True  # flags unknown: the safe choice
    assert {plain["activation_type"], plain["weight_type"], plain["per_channel"]} == {"uint8", "int8", True}


def test_calibration_inputs_sources(tmp_path):
    clips = calibration_inputs(VIDEO, 3, seed=0)
    assert len(clips) == 3 and clips.inputs[0][0].shape == (1, 3, 8, 64, 64) and "synthetic motion clips" in clips.source
    assert np.array_equal(clips.inputs[1][0], calibration_inputs(VIDEO, 3, seed=0).inputs[1][0])
    noise = calibration_inputs(InputSpec((1, 3, 32, 32), layout="B,C,H,W"), 2, seed=1)
    assert noise.inputs[0][0].shape == (1, 3, 32, 32) and "normal" in noise.source
    for i in range(3):  # with and without the batch dim
        np.save(tmp_path / f"c{i}.npy", np.zeros((3, 8, 64, 64) if i else (1, 3, 8, 64, 64), np.float64))
    folder = calibration_inputs(VIDEO, 2, tmp_path)
    assert len(folder) == 2 and folder.inputs[1][0].shape == (1, 3, 8, 64, 64) and folder.inputs[0][0].dtype == np.float32
    np.save(tmp_path / "c9.npy", np.zeros((3, 8, 32, 32), np.float32))
    with pytest.raises(BadInput, match=r"c9\.npy' has shape 3x8x32x32; the model takes 1x3x8x64x64"):
        calibration_inputs(VIDEO, 10, tmp_path)
    with pytest.raises(BadInput, match="no .npy files"):
        calibration_inputs(VIDEO, 2, _empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir(exist_ok=True)
    return tmp_path / "empty"


def test_quant_skip_unknown_onnx_module_names_one(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from edgest_onnx.quantizer import _nodes_to_exclude

    w = helper.make_tensor("fc.weight", TensorProto.FLOAT, [2, 2], [1, 0, 0, 1])
    node = helper.make_node("MatMul", ["x", "fc.weight"], ["y"], name="node_MatMul_1")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    assert _nodes_to_exclude(onnx.helper.make_model(graph).graph, ["fc"]) == ["node_MatMul_1"]
    with pytest.raises(BadInput, match="'layer9' matches no node .* e.g. fc"):
        _nodes_to_exclude(graph, ["layer9"])


# --------------------------------------------------------------------------- errors


def test_target_without_quantizer_is_unsupported(registry):
    with pytest.raises(Unsupported, match="target 'eager' does not support precision 'int8'; supported: fp32"):
        edgest.compile("squeezetime_tiny", "eager", precision="int8", registry=registry)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    example = (torch.randn(2, 4),)
    program = torch.export.export(model, example)
    with pytest.raises(Unsupported, match="target 'eager' has no int8 quantizer; supported precisions: fp32$"):
        QuantizePass().run(program, PassContext(EagerTarget(), example))


def test_quantize_pass_needs_int8_precision_and_known_options(registry):
    with pytest.raises(BadInput, match="add --precision int8"):
        edgest.compile("squeezetime_tiny", "onnx", passes=["quantize"], registry=registry)
    with pytest.raises(BadInput, match="pass 'quantize' option scheme='int4' is not one of int8, int8-weight"):
        QuantizePass(scheme="int4")
    with pytest.raises(BadInput, match="unknown pass 'quantize' option 'calib'; available: scheme, calibration"):
        QuantizePass(calib=3)
    with pytest.raises(BadInput, match="calibration folder '/nonexistent' does not exist"):
        QuantizePass(calibration="/nonexistent")


def test_quantize_listed_twice_is_refused_before_any_work(registry, tmp_path):
    with pytest.raises(BadInput, match=r"^pass 'quantize' is listed 2 times; give it once"):  # ran twice: two entries
        edgest.compile("squeezetime_tiny", "onnx", precision="int8", out_dir=tmp_path / "run", registry=registry,
                       passes=["quantize", ("quantize", {"calibration_size": 8})])
    assert not (tmp_path / "run").exists()


def test_a_calibration_folder_without_inputs_or_with_a_cut_video_is_refused_when_the_pass_is_made(tmp_path):
    """The plan makes the pass: a folder it cannot calibrate on is named then, not after the build and reference run."""
    from edgest.testing.videos import write_video

    (tmp_path / "cal").mkdir()
    with pytest.raises(BadInput, match=r"calibration folder '.*cal' has no .npy files .* and no video files"):
        QuantizePass(calibration=str(tmp_path / "cal"))
    rng = np.random.default_rng(0)
    for i in range(3):
        write_video(tmp_path / "cal" / f"v{i}.mp4", rng.standard_normal((3, 8, 32, 32)).astype(np.float32))
    assert QuantizePass(calibration=str(tmp_path / "cal")).options["calibration"] == str(tmp_path / "cal")
    data = (tmp_path / "cal" / "v1.mp4").read_bytes()
    (tmp_path / "cal" / "v1.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match=r"cannot read video file '.*v1.mp4': .*check that the file is complete"):
        QuantizePass(calibration=str(tmp_path / "cal"))
    assert QuantizePass(calibration=str(tmp_path / "cal"), calibration_size=1).options["calibration_size"] == 1


def test_cli_calibration_with_wrong_shape_is_one_line_error(tmp_path):
    cal = tmp_path / "cal"
    cal.mkdir()
    np.save(cal / "clip0.npy", np.zeros((3, 8, 32, 32), np.float32))
    env = {k: v for k, v in os.environ.items() if k not in ("EDGEST_DISABLE_PLUGIN_AUTOLOAD", "FORCE_COLOR")}
    env["EDGEST_LOAD_PLUGINS"] = "models,onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "edgest", "compile", "--model", "squeezetime_tiny", "--target", "onnx", "--precision", "int8",
         "--calibration", str(cal), "--out", str(tmp_path / "run"), "--quiet"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("edgest: error: calibration file") and "clip0.npy' has shape 3x8x32x32" in lines[0]
    assert "1x3x8x64x64" in lines[0]
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- ONNX Runtime (artifact stage)


@pytest.fixture(scope="module")
def squeezetime_onnx(registry, tmp_path_factory):
    out = tmp_path_factory.mktemp("q")
    int8 = edgest.compile("squeezetime_tiny", "onnx", out_dir=out / "int8", precision="int8", samples=4, latency=FAST,
                          passes=[("quantize", {"calibration_size": 8})], registry=registry)
    fp32 = edgest.compile("squeezetime_tiny", "onnx", out_dir=out / "fp32", samples=4, latency=None, registry=registry)
    return int8, fp32


def test_onnx_int8_squeezetime(squeezetime_onnx):
    report, fp32 = squeezetime_onnx
    acc = report.check("accuracy")
    assert report.status == "passed", report.error
    assert report.precision == "int8" and acc.limits == LIMITS["int8"]
    assert acc.metrics["sqnr_db"] >= 15 and report.check("latency").status == "passed"
    assert report.artifact.size_bytes < 0.5 * fp32.artifact.size_bytes
    q = report.artifact.details["quantization"]
    settings = choose_settings()
    assert q["stage"] == "artifact" and q["format"] == "QDQ" and q["scheme"] == "int8"
    assert q["reduce_range"] == settings["reduce_range"] and q["reduce_range_reason"] == settings["reduce_range_reason"]
    assert q["per_channel"] is True and q["activation_type"] == "uint8" and q["nodes_quantized"] > 40
    assert q["float_size_bytes"] == fp32.artifact.size_bytes and q["calibration_size"] == 8
    (rec,) = report.passes
    assert rec.name == "quantize" and rec.modified and rec.options == {
        "scheme": "int8", "calibration": None, "calibration_size": 8, "skip": []}
    assert "int8 static QDQ (onnxruntime" in rec.summary and f"reduce_range={settings['reduce_range']}" in rec.summary
    assert "synthetic motion clips" in rec.summary and "float vs quantised onnx artifact" in rec.summary
    # the pass's delta is float ONNX vs int8 ONNX; the check is eager vs int8 ONNX: close, not equal
    assert 15 <= rec.accuracy_delta["sqnr_db"] < 60 and abs(rec.accuracy_delta["sqnr_db"] - acc.metrics["sqnr_db"]) < 3


def test_onnx_int8_emov2_with_modules_kept_float(registry, tmp_path):
    weights = write_responsive_weights(registry.model("emov2_tiny_video"), tmp_path / "w.pt")  # random init ignores its input
    report = edgest.compile("emov2_tiny_video", "onnx", out_dir=tmp_path / "r", precision="int8", samples=4, latency=None,
                            weights=weights, task_samples=0,
                            passes=[("quantize", {"calibration_size": 4, "skip": ["head", "stage4.1"]})], registry=registry)
    # judged on SQNR only: the stand-in weights' logits on noise are near-ties (top-1 agreement 72-84 % on 32 inputs
    # with or without the skip, old rules and new), so agreement on 4 inputs is one coin flip per input
    acc = report.check("accuracy")
    assert report.artifact is not None and acc.metrics["sqnr_db"] >= LIMITS["int8"]["min_sqnr_db"], report.error
    q = report.artifact.details["quantization"]
    assert report.artifact.size_bytes < q["float_size_bytes"]
    assert q["nodes_excluded"] >= 3 and q["skip"] == ["head", "stage4.1"]
    assert "kept float (head, stage4.1)" in report.passes[0].summary


# --------------------------------------------------------------------------- ExecuTorch (program stage)

if importlib.util.find_spec("executorch") is not None:
    from edgest_executorch.quantizer import quantizer_for
    from edgest_executorch.target import ExecuTorchTarget

    class ExecuTorchInt8(ExecuTorchTarget):
        """The ExecuTorch target with the two lines that wire its quantizer in (until target.py has them)."""

        precisions = ("fp32", "int8")

        def quantizer(self, scheme):
            return quantizer_for(scheme, self.option("flavour"))


@pytest.mark.skipif(importlib.util.find_spec("executorch") is None, reason="executorch not installed")
def test_executorch_int8_pt2e_xnnpack(tmp_path):
    import edgest_executorch.plugin

    pm = new_plugin_manager(entry_points=False)
    pm.add(edgest_models.plugin, "models")
    pm.add(edgest_executorch.plugin, "executorch")
    reg = pm.registry
    if "executorch" not in reg.targets:
        pytest.skip("the ExecuTorch target is not registered")
    if "int8" not in reg.targets["executorch"].precisions:  # not wired yet: test the quantizer through a subclass
        reg.targets["executorch"] = ExecuTorchInt8
    report = edgest.compile("squeezetime_tiny", "executorch", out_dir=tmp_path / "r", precision="int8", samples=4,
                            latency=None, passes=[("quantize", {"calibration_size": 2})], registry=reg)
    assert report.status == "passed", report.error
    (rec,) = report.passes
    assert rec.modified and "XNNPACK PT2E per-channel int8" in rec.summary and "conv2d" in rec.summary
    assert rec.accuracy_delta["sqnr_db"] >= 15  # eager float vs eager Q/DQ program, measured by the pipeline
    d = report.artifact.details
    assert d["quantization"]["stage"] == "program" and d["quantization"]["per_channel_weights"] > 40
    assert d["non_delegated_nodes"] == 0 and d["delegated_nodes"] > 0
    assert report.artifact.size_bytes < 500_000  # float .pte of the same model: ~1.0 MB
    with pytest.raises(Unsupported, match="flavour 'portable'"):
        quantizer_for("int8", "portable")
