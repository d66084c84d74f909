"""report.md of one compile: weights and latency protocol stated, target details as a table, stage times,
and merged device figures as columns beside the host's (re-merging rewrites the same bytes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from edgest.bundle.merge import merge_device_reports
from edgest.records import Artifact, CheckResult, InputSpec, ModelSpec, Report
from edgest.report.run_markdown import details_rows, render_markdown
from edgest.report.weights import weights_line, weights_record
from edgest.report.writers import read_json, write_reports

SHA = "ab" * 32
HOST = {"hostname": "vm", "os": "Linux", "cpu": "Test CPU", "cpu_count": 2}


def _report(**changes: Any) -> Report:
    spec = ModelSpec("tiny", "squeezetime", InputSpec((1, 3, 8, 64, 64), layout="B,C,T,H,W"), 10)
    details = {"opset": 20, "quantization": {"scheme": "int8", "calibration": {"inputs": 32, "source": "synthetic"},
                                             "sensitivity": {"layers": [{"layer": "fc"}]}},
               "files": ["model.onnx", "model.onnx.data"], "ops": [{"op": "Conv"}, {"op": "Relu"}]}
    art = Artifact("tiny", "onnx", "model.onnx", "onnx", 1_000_000, SHA, toolchain={"onnxruntime": "1.22"}, details=details,
                   compile_seconds=2.5)
    checks = (CheckResult("accuracy", "passed", {"max_abs": 1e-8, "sqnr_db": 141.4, "top1_agreement": 1.0, "samples": 8},
                          {"min_sqnr_db": 40.0, "min_top1_agreement": 1.0}, HOST),
              CheckResult("latency", "passed", {"p50_ms": 0.57, "p90_ms": 0.7, "runs": 30, "warmup": 5, "threads": 1,
                                                "cold_load_ms": 20.0, "sustained_p50_ms": []},
                          {"warmup": 5, "min_runs": 30, "min_seconds": 2.0}, HOST))
    fields: dict[str, Any] = {"status": "passed", "model": spec, "target": "onnx", "artifact": art, "checks": checks,
                              "created": "2026-01-01T00:00:00+00:00",
                              "stage_seconds": {"build": 0.12, "capture": 0.63, "lower": 5.23, "checks": 4.07},
                              "weights": {"kind": "random-init"}}
    return Report(**{**fields, **changes})


def _device(path: Path, name: str, p50: float) -> Path:
    path.write_text(json.dumps({
        "kind": "edgest-device-report", "model": "tiny", "target": "onnx", "precision": "fp32", "artifact_sha256": SHA,
        "device": {"name": name, "os": "Android 14", "machine": "aarch64", "runtime": "onnxruntime", "runtime_version": "1.22.0"},
        "accuracy": {"max_abs": 2e-8, "sqnr_db": 139.0, "top1_agreement": 1.0, "samples": 8, "status": "passed",
                     "limits": {"min_sqnr_db": 40.0, "min_top1_agreement": 1.0}, "reason": ""},
        "latency": {"p50_ms": p50, "p90_ms": p50 * 1.2, "runs": 20, "warmup": 3, "threads": 4, "cold_load_ms": 100.0,
                    "sustained_p50_ms": []}}))
    return path


def test_report_states_weights_protocol_stages_and_details():
    md = render_markdown(_report())
    assert "- Weights: random initialisation (no weights file)" in md
    assert "- Time per stage: build 0.1 s · capture 0.6 s · lower 5.2 s · checks 4.1 s (total 10.1 s)" in md
    assert ("Protocol: on the host: p50 and p90 of 30 timed runs after 5 warm-up runs, 1 thread (at least 30 runs and 2 s). "
            '"passed" means measured: there is no latency limit unless a bench budget is given') in md
    assert "| quantization.scheme | int8 |" in md and "| quantization.calibration.inputs | 32 |" in md
    assert "| files | model.onnx, model.onnx.data |" in md and "| ops | 2 entries (see report.json) |" in md
    assert "| quantization.sensitivity | see Quantisation sensitivity below |" in md
    assert "{'" not in md and "sustained_p50_ms" not in md and "[]" not in md  # no dict dumps, no empty figures
    assert "- Latency: not measured" not in md
    assert "- Latency: not measured in this run" in render_markdown(_report(checks=_report().checks[:1]))


def test_details_rows_flatten_nested_values():
    assert details_rows({"a": {"b": 1, "c": {"d": "x|y"}}, "e": [], "f": 0.5}) == [("a.b", "1"), ("a.c.d", "x\\|y"), ("f", "0.5")]


def test_weights_line_names_the_file_and_its_sha256(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"state dict bytes")
    rec = weights_record(weights)
    assert rec == {"kind": "file", "path": str(weights), "sha256": hashlib.sha256(b"state dict bytes").hexdigest()}
    assert weights_line(rec) == f"loaded from `{weights}` (sha256 `{rec['sha256'][:16]}…`)"
    assert weights_line(weights_record(weights, "stand-in")).startswith("stand-in weights, not trained")
    assert weights_line({}).startswith("not recorded")
    with pytest.raises(ValueError, match="unknown weights kind"):
        weights_record(weights, "pretrained")


def test_merged_devices_are_columns_beside_the_host_and_remerging_changes_nothing(tmp_path):
    write_reports(_report(), tmp_path)
    pixel, rpi = _device(tmp_path / "a.json", "pixel-8", 4.2), _device(tmp_path / "b.json", "rpi-5", 9.5)
    merge_device_reports(tmp_path, [pixel, rpi])
    once = {n: (tmp_path / n).read_bytes() for n in ("report.json", "report.md")}
    merge_device_reports(tmp_path, [pixel, rpi, pixel])
    assert {n: (tmp_path / n).read_bytes() for n in once} == once
    md = once["report.md"].decode()
    assert md.count("## Accuracy") == 1 and md.count("## Latency") == 1 and "where: device" not in md
    assert "## Latency: passed · pixel-8: passed · rpi-5: passed" in md
    assert "| metric | host | pixel-8 | rpi-5 |" in md and "| p50_ms | 0.57 | 4.2 | 9.5 |" in md
    assert "| sqnr_db | 141.4 | 139 | 139 |" in md and "| mean_ms |" not in md
    assert "sustained_p50_ms" not in md and "[]" not in md
    assert "on pixel-8: p50 and p90 of 20 timed runs after 3 warm-up runs, 4 threads" in md
    assert "Device rpi-5: os: Android 14, machine: aarch64, runtime: onnxruntime, runtime_version: 1.22.0" in md
    assert "Limits on pixel-8" not in md  # the same limits as the host's are not repeated
    assert read_json(tmp_path / "report.json").weights == {"kind": "random-init"}
