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
#: targets whose check runs off the build host's own runtime too (Core ML: edgest's MIL reference interpreter off macOS)
MORE = {"litert": ("ai_edge_litert", "pip install -e targets/litert"), "coreml": ("coremltools", "pip install -e targets/coreml")}


def _needs(target: str) -> None:
    module, how = {**RUNTIMES, **MORE}[target]
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
@pytest.mark.parametrize("target", [*RUNTIMES, *MORE])
@pytest.mark.parametrize("model", ["lmuformer_tiny", "lmuformer_spiking_tiny", "lmuformer_video_tiny"])
def test_every_streaming_model_streams_at_fp32_on_every_target(model, target, tmp_path):
    """The done-when matrix of issue 20 at fp32: each LMUFormer's step program, streamed by each runtime.

    The spiking model ignores its input at its paper's init (no neuron fires), so it runs on responsive
    stand-in weights (edgest.testing.weights) there: otherwise every step would agree trivially.
    """
    from edgest.plugins import get_registry
    from edgest.testing.weights import ignores_its_input, write_responsive_weights

    _needs(target)
    entry = get_registry().model(model)
    weights = write_responsive_weights(entry, tmp_path / "w.pt") if ignores_its_input(entry) else None
    report = _stream(model, target, tmp_path, weights=weights, precision="fp32")  # Core ML's default is fp16
    check = report.check("streaming")
    assert check.status == report.check("accuracy").status == "passed", (report.error, check.reason)
    assert check.metrics["sqnr_db"] > 60 and check.metrics["top1_agreement"] == 1.0, check.metrics
    assert (tmp_path / "run" / "streaming.json").is_file()


@pytest.mark.parametrize("target", ["onnx", "executorch"])
def test_int8_calibrates_on_streamed_steps(target, tmp_path):
    report = _stream("lmuformer_tiny", target, tmp_path, precision="int8")
    (quant,) = [p for p in report.passes if p.name == "quantize"]
    assert "streamed steps (with the states they reach)" in quant.summary
    assert report.check("streaming").status == "passed", report.error
    assert report.check("accuracy").metrics["judged_outputs"].startswith("out_t")
