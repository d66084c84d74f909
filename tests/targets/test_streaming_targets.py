"""``--streaming`` on the toolchain targets: the tiny LMUFormers' step modules lowered as plain (x_t, *state)
programs, run step by step by each runtime with its own state fed back, and equal to the parallel model (issue 20)."""

from __future__ import annotations

import importlib.util

import pytest

import edgest

pytest.importorskip("edgest_models.lmuformer", reason="edgest-models not installed (pip install -e models)")

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
#: target -> the module its runtime needs, and how to install it
RUNTIMES = {"onnx": ("onnxruntime", "pip install -e targets/onnx"), "executorch": ("executorch", "pip install -e targets/executorch"),
            "tvm": ("tvm", "pip install -e targets/tvm"), "openvino": ("openvino", "pip install -e plugins/edgest-openvino")}


def _needs(target: str) -> None:
    module, how = RUNTIMES[target]
    if importlib.util.find_spec(module) is None or importlib.util.find_spec(f"edgest_{target}") is None:
        pytest.skip(f"{target}: {module} or edgest-{target} not installed ({how})")


def _stream(model: str, target: str, tmp_path, **kw) -> edgest.Report:
    _needs(target)
    return edgest.compile(model, target, out_dir=tmp_path / "run", streaming=True, latency=FAST, samples=4, **kw)


@pytest.mark.parametrize("target", list(RUNTIMES))
def test_tiny_lmuformer_streams_at_fp32(target, tmp_path):
    report = _stream("lmuformer_tiny", target, tmp_path)
    check = report.check("streaming")
    assert report.status == "passed", report.error
    assert check.metrics["sqnr_db"] > 60 and check.metrics["top1_agreement"] == 1.0
    assert check.metrics["step_p50_ms"] > 0 and check.metrics["real_time_factor"] > 0
    assert (tmp_path / "run" / "streaming.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("target", list(RUNTIMES))
def test_tiny_video_lmuformer_streams_at_fp32(target, tmp_path):
    report = _stream("lmuformer_video_tiny", target, tmp_path)
    assert report.status == "passed", report.error
    assert report.check("streaming").metrics["sqnr_db"] > 60


@pytest.mark.parametrize("target", ["onnx", "executorch"])
def test_int8_calibrates_on_streamed_steps(target, tmp_path):
    report = _stream("lmuformer_tiny", target, tmp_path, precision="int8")
    (quant,) = [p for p in report.passes if p.name == "quantize"]
    assert "streamed steps (with the states they reach)" in quant.summary
    assert report.check("streaming").status == "passed", report.error
    assert report.check("accuracy").metrics["judged_outputs"].startswith("out_t")
