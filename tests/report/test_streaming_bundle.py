"""A ``--streaming`` run's device bundle (issue 20): the step artifact streamed over whole sequences with its
state fed back, using only NumPy and the runtime; per-step latency, real-time factor, and the device report
merged back. Tiny LMUFormer on ONNX (the runtime-only venv round trip is the whole-input one's:
tests/report/test_device_round_trip.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgest
from edgest.bundle import build_bundle, merge_device_reports
from edgest.errors import BadInput
from edgest.report.writers import read_json

pytest.importorskip("edgest_models.lmuformer", reason="edgest-models not installed (pip install -e models)")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install -e targets/onnx)")

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
STATES = ["blocks_0_attn_lmu_memory", "logit_sum", "step_count"]


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "lmu-stream"
    report = edgest.compile("lmuformer_tiny", "onnx", out_dir=out, streaming=True, latency=FAST, samples=4)
    assert report.check("streaming").status == "passed", report.error
    return out


def _script(bundle: Path, python: str = sys.executable, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "run_on_device.py", "--runs", "5", "--seconds", "0", "--device-name", "venv-device"],
                          check=False, cwd=bundle, capture_output=True, text=True, timeout=600, env=env)


def test_streaming_bundle_holds_sequences_states_and_the_interface(stream_run, tmp_path):
    bundle = build_bundle(stream_run, tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    stream = manifest["streaming"]
    assert stream == {"sequences": 4, "steps": 16, "states": 3, "state_names": STATES, "step_seconds": 0.01,
                      "interface": "streaming.json"}
    assert manifest["samples"] == 4 and manifest["input_shape"] == [1, 32]
    assert manifest["limits"] == read_json(stream_run / "report.json").check("streaming").limits
    assert manifest["host"]["step_p50_ms"] > 0 and manifest["host"]["real_time_factor"] > 0
    data = sorted(p.name for p in (bundle / "data").iterdir())
    assert data == sorted([f"{k}_{i:02d}.npy" for k in ("steps", "expected") for i in range(4)]
                          + [f"state_{j:02d}.npy" for j in range(3)])
    assert np.load(bundle / "data" / "steps_00.npy").shape == (16, 1, 32)
    assert np.load(bundle / "data" / "expected_00.npy").shape == (16, 1, 10)
    assert json.loads((bundle / "streaming.json").read_text())["state_feedback"][0]["name"] == STATES[0]
    stepping = (bundle / "edgest_check" / "stepping.py").read_text()
    assert "import torch" not in stepping and "streams whole sequences" in (bundle / "README.txt").read_text()


def test_streaming_bundle_round_trips_in_a_runtime_only_venv(stream_run, tmp_path):
    from test_device_round_trip import _runtime_venv  # the whole-input round trip's venv: only the manifest's installs

    bundle = build_bundle(stream_run, tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    py, clean = _runtime_venv(tmp_path / "device-venv", manifest["runtime_install"])
    code = "import importlib.util as u; print([m for m in ('torch', 'edgest', 'onnx') if u.find_spec(m)])"
    probe = subprocess.run([str(py), "-c", code], check=False, capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr  # truly runtime-only
    done = _script(bundle, str(py), clean)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "streaming passed (worst step SQNR" in done.stdout and "real-time factor" in done.stdout
    device = json.loads((bundle / "device-report.json").read_text())
    acc, lat = device["accuracy"], device["latency"]
    assert acc["status"] == "passed" and acc["sqnr_db"] > 60 and acc["top1_agreement"] == 1.0
    assert acc["steps"] == 16 and acc["sequences"] == 4 and len(acc["per_step_sqnr_db"]) == 16
    assert lat["hop_ms"] == 10.0 and lat["real_time_factor"] == pytest.approx(lat["p50_ms"] / 10.0)
    assert device["streaming"] == {"sequences": 4, "steps": 16, "step_seconds": 0.01}
    assert device["device"]["runtime"] == "onnxruntime"
    lines = merge_device_reports(stream_run, [bundle / "device-report.json"])
    assert lines and "venv-device" in lines[0]
    merged = read_json(stream_run / "report.json")
    on_device = {c.kind: c for c in merged.checks if c.host.get("name") == "venv-device"}
    assert set(on_device) == {"streaming", "latency"} and on_device["streaming"].status == "passed"
    m = on_device["streaming"].metrics
    assert m["real_time_factor"] == pytest.approx(lat["real_time_factor"]) and m["step_p50_ms"] == lat["p50_ms"]
    assert merged.check("streaming").host.get("where") != "device"  # the host's check stays first
    assert "venv-device" in (stream_run / "report.md").read_text()
    again = merge_device_reports(stream_run, [bundle / "device-report.json"])  # idempotent
    assert again == lines and len(read_json(stream_run / "report.json").checks) == len(merged.checks)


NO_FEEDBACK = '''"""The ONNX device runner, wrapped so that every step gets the initial (zero) state: feedback broken."""
import numpy as np
import real_runner


class _NoFeedback:
    def __init__(self, runner):
        self.runner, self.threads = runner, runner.threads

    def run(self, inputs):
        return self.runner.run([inputs[0], *(np.zeros_like(a) for a in inputs[1:])])


def load(path, threads):
    return _NoFeedback(real_runner.load(path, threads))
'''


def test_a_device_runtime_that_drops_the_state_fails_the_streaming_bundle(stream_run, tmp_path):
    bundle = build_bundle(stream_run, tmp_path / "bundle")
    (bundle / "edgest_device_runner.py").rename(bundle / "real_runner.py")
    (bundle / "edgest_device_runner.py").write_text(NO_FEEDBACK)
    done = _script(bundle)
    assert done.returncode == 1, done.stderr[-2000:]
    acc = json.loads((bundle / "device-report.json").read_text())["accuracy"]
    assert acc["status"] == "failed" and acc["reason"].startswith("streaming: ") and acc["sqnr_db"] < 40


def test_a_streaming_device_report_does_not_merge_into_a_whole_input_run(stream_run, tmp_path):
    bundle = build_bundle(stream_run, tmp_path / "bundle")
    assert _script(bundle).returncode == 0
    device = json.loads((bundle / "device-report.json").read_text())
    del device["streaming"]
    (tmp_path / "edited.json").write_text(json.dumps(device))
    with pytest.raises(BadInput, match="a whole-input bundle's but .* is not a whole-input compile"):
        merge_device_reports(stream_run, [tmp_path / "edited.json"])


def test_a_streaming_run_without_its_sequences_names_the_fix(stream_run, tmp_path):
    import shutil

    old = tmp_path / "old-run"
    shutil.copytree(stream_run, old)
    (old / "stream_reference.npz").unlink()
    with pytest.raises(BadInput, match="without its stream_reference.npz; compile it again"):
        build_bundle(old, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_a_streaming_bundle_missing_a_sequence_is_one_line(stream_run, tmp_path):
    bundle = build_bundle(stream_run, tmp_path / "bundle")
    (bundle / "data" / "steps_01.npy").unlink()
    done = _script(bundle)
    assert done.returncode == 1 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: the bundle is damaged or incomplete (FileNotFoundError")
    assert not (bundle / "device-report.json").exists()
