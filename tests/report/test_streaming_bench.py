"""``edgest bench --streaming`` (issue 20): per-step p50/p90, cold load and real-time factor per cell in bench.json
(schema 1.2), report.md and report.html; streaming device results merged back as their own columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from synthetic_bench import SHA, bench_document

import edgest
from edgest.bench import BENCH_SCHEMA_VERSION
from edgest.bundle import merge_device_reports
from edgest.errors import BadInput
from edgest.report.bench_writers import render_bench_markdown, write_bench_reports
from edgest.report.html import render_html

SCHEMA = json.loads((Path(edgest.__file__).parent / "report" / "schema" / "bench.schema.json").read_text())
STREAM = {"status": "passed", "sqnr_db": 126.1, "top1_agreement": 1.0, "drift_db": -8.1, "last_step_sqnr_db": 134.2,
          "step_p50_ms": 0.06, "step_p90_ms": 0.088, "cold_load_ms": 64.3, "hop_ms": 10.0, "real_time_factor": 0.006,
          "real_time_factor_p90": 0.0088, "steps": 128}


def _streaming_doc() -> dict:
    """The synthetic bench as a --streaming one: the squeezetime onnx fp32 cell streamed, and a phone's streaming run of it."""
    doc = bench_document()
    doc["schema_version"], doc["settings"]["streaming"] = BENCH_SCHEMA_VERSION, True
    cell = next(c for c in doc["cells"] if (c["model"], c["target"], c["precision"]) == ("squeezetime_tiny", "onnx", "fp32"))
    cell["streaming"] = dict(STREAM)
    doc["device_results"][0]["streaming"] = {"sequences": 4, "steps": 128, "step_seconds": 0.01}
    doc["device_results"][0]["latency"].update({"p50_ms": 0.5, "hop_ms": 10.0, "real_time_factor": 0.05})
    return doc


def test_streaming_cells_are_schema_valid_and_show_per_step_latency_and_rtf():
    doc = _streaming_doc()
    assert BENCH_SCHEMA_VERSION == "1.2"
    jsonschema.validate(doc, SCHEMA)
    md = render_bench_markdown(doc)
    table = md[md.index("## Streaming"):].splitlines()
    assert table[2] == ("| model | target | precision | status | worst-step SQNR dB | step p50 ms | step p90 ms | cold load ms | "
                        "hop ms | real-time factor | pixel-8 step p50 ms | pixel-8 real-time factor |")
    assert table[4] == "| squeezetime_tiny | onnx | fp32 | passed | 126.1 | 0.060 | 0.088 | 64.3 | 10 | 0.0060 | 0.500 | 0.0500 |"
    html = render_html(doc)
    streaming = html[html.index('<table id="streaming">'):]
    assert "<th>cold load ms</th>" in streaming and "<th>pixel-8 real-time factor</th>" in streaming
    assert "<td>0.0060</td>" in streaming and "<td>0.0500</td>" in streaming


def test_a_bench_without_streaming_shows_no_streaming_table_and_bad_cells_fail_the_schema():
    doc = bench_document()  # schema 1.0: no streaming anywhere, read as nothing streamed
    assert "## Streaming" not in render_bench_markdown(doc) and 'id="streaming"' not in render_html(doc)
    bad = _streaming_doc()
    bad["cells"][0]["streaming"] = {"status": "passed", "real_time_factor": -1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


def test_merge_reads_1x_benches_and_refuses_another_major(tmp_path):
    doc = _streaming_doc()
    doc["device_results"] = []
    write_bench_reports(doc, tmp_path)
    device = {**_streaming_doc()["device_results"][0], "created": "now"}
    device["accuracy"] = {**device["accuracy"], "limits": {}}
    (tmp_path / "device-report.json").write_text(json.dumps(device))
    assert merge_device_reports(tmp_path, [tmp_path / "device-report.json"]) == ["merged squeezetime_tiny/onnx from pixel-8"]
    assert "| 0.500 | 0.0500 |" in (tmp_path / "report.md").read_text()
    plain = {k: v for k, v in device.items() if k != "streaming"}  # a whole-input bundle's report for a streamed cell
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    with pytest.raises(BadInput, match="whole-input bundle's but .* is not a whole-input compile"):
        merge_device_reports(tmp_path, [tmp_path / "plain.json"])
    later = json.loads((tmp_path / "bench.json").read_text())
    later["schema_version"] = "2.0"
    (tmp_path / "bench.json").write_text(json.dumps(later))
    with pytest.raises(BadInput, match=r"has schema '2.0'; this edgest reads 1\.2"):
        merge_device_reports(tmp_path, [tmp_path / "device-report.json"])
    assert SHA[("squeezetime_tiny", "onnx", "fp32")] == device["artifact_sha256"]


def test_bench_streaming_refuses_a_model_without_a_step_module_before_any_cell(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEST_")}
    proc = subprocess.run([sys.executable, "-m", "edgest", "bench", "--models", "lmuformer_tiny,squeezetime_tiny",
                           "--targets", "eager", "--streaming", "--out", str(tmp_path / "b")],
                          check=False, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("edgest: error: model 'squeezetime_tiny' has no step (streaming) module")
    assert not (tmp_path / "b").exists()


@pytest.mark.slow  # a real cell and its eager reference (~1 min here); the API path: tests/core/test_streaming.py
def test_bench_cli_streaming_writes_per_step_latency_and_a_cell_bundles_and_merges(tmp_path):
    pytest.importorskip("edgest_models.lmuformer", reason="edgest-models not installed (pip install -e models)")
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install -e targets/onnx)")
    from edgest.bundle import build_bundle

    out = tmp_path / "bench"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEST_")}
    proc = subprocess.run([sys.executable, "-m", "edgest", "bench", "--models", "lmuformer_tiny", "--targets", "onnx",
                           "--streaming", "--samples", "2", "--quiet", "--out", str(out)],
                          check=False, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "bench.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema_version"] == "1.2" and doc["settings"]["streaming"] is True
    cell = next(c for c in doc["cells"] if c["target"] == "onnx")
    s = cell["streaming"]
    assert s["status"] == "passed" and s["steps"] == 16 and s["hop_ms"] == 10.0
    assert s["real_time_factor"] == pytest.approx(s["step_p50_ms"] / 10.0) and s["step_p90_ms"] >= s["step_p50_ms"]
    assert "## Streaming" in (out / "report.md").read_text() and 'id="streaming"' in (out / "report.html").read_text()
    bundle = build_bundle(out / cell["run_dir"], tmp_path / "bundle")
    done = subprocess.run([sys.executable, "run_on_device.py", "--runs", "3", "--seconds", "0", "--device-name", "board"],
                          check=False, cwd=bundle, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    merge_device_reports(out, [bundle / "device-report.json"])
    assert "board real-time factor" in (out / "report.md").read_text()
