"""Bundle → a fresh venv holding only the runtime and NumPy → run_on_device.py → merge."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

import edgest
from edgest.bundle import build_bundle, merge_device_reports
from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput
from edgest.report.writers import read_json


@pytest.fixture(scope="module")
def onnx_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "onnx"
    edgest.compile("squeezetime_tiny", "onnx", out_dir=out, latency=LatencyConfig(warmup=1, min_runs=3, min_seconds=0))
    return out


def test_bundle_holds_artifact_data_and_a_runtime_only_script(onnx_run, tmp_path):
    bundle = build_bundle(onnx_run, tmp_path / "bundle")
    names = sorted(p.name for p in bundle.iterdir())
    assert names == ["README.txt", "data", "edgest_check", "manifest.json", "model.onnx", "run_on_device.py"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["samples"] == 8 and manifest["format"] == "onnx" and manifest["input_shape"] == [1, 3, 8, 64, 64]
    source = (bundle / "run_on_device.py").read_text() + "".join(p.read_text() for p in (bundle / "edgest_check").glob("*.py"))
    assert "import torch\n" not in source.replace("        import torch  # ExecuTorch", "").replace("        import torch  # CUDA", "")
    assert "edgest." not in source.replace("edgest.checks", "")


def test_round_trip_in_a_runtime_only_venv(onnx_run, tmp_path):
    env_dir = tmp_path / "device-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy", "onnxruntime==1.32.*"], capture_output=True, text=True, timeout=900)
    if pip.returncode != 0:
        pytest.skip(f"cannot install onnxruntime into a fresh venv here: {pip.stderr.strip().splitlines()[-1:]}")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    probe = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('edgest'))"],
                           capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert probe.stdout.strip() == "None None"  # truly runtime-only
    bundle = build_bundle(onnx_run, tmp_path / "bundle")
    run = subprocess.run([str(py), "run_on_device.py", "--runs", "5", "--seconds", "0", "--device-name", "venv-device"],
                         cwd=bundle, capture_output=True, text=True, timeout=300, env=clean)
    assert run.returncode == 0, run.stderr
    device = json.loads((bundle / "device-report.json").read_text())
    assert device["accuracy"]["status"] == "passed" and device["accuracy"]["sqnr_db"] > 100
    assert device["device"]["runtime"] == "onnxruntime" and device["device"]["runtime_version"].startswith("1.32")
    lines = merge_device_reports(onnx_run, [bundle / "device-report.json"])
    assert lines and "venv-device" in lines[0]
    merged = read_json(onnx_run / "report.json")
    assert any(c.host.get("name") == "venv-device" and c.kind == "latency" for c in merged.checks)
    assert "venv-device" in (onnx_run / "report.md").read_text()


def test_merge_refuses_a_report_for_another_artifact(onnx_run, tmp_path):
    fake = {"kind": "edgest-device-report", "model": "x", "target": "onnx", "precision": "fp32", "artifact_sha256": "0" * 64,
            "device": {"name": "d"}, "accuracy": {}, "latency": {}}
    path = tmp_path / "device-report.json"
    path.write_text(json.dumps(fake))
    with pytest.raises(BadInput, match="another artifact"):
        merge_device_reports(onnx_run, [path])
