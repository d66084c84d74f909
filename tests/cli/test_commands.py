"""list and doctor: tables for people, --json for scripts."""

from __future__ import annotations

import json
import subprocess
import sys


def _edgest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgest", *args], capture_output=True, text=True, timeout=300)


def test_list_json_shows_models_targets_and_plugins():
    proc = _edgest("list", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    models = {m["name"]: m for m in data["models"]}
    assert models["squeezetime"]["input"] == "1x3x16x224x224"
    assert models["squeezetime"]["params"] == "29,706,688"
    assert models["squeezetime"]["macs"] == "5.483 G"
    targets = {t["name"]: t for t in data["targets"]}
    assert targets["onnx"]["available"] == "yes" and targets["eager"]["format"] == "pt2"
    plugins = {p["name"]: p for p in data["plugins"]}
    assert plugins["onnx"]["distribution"] == "edgest-onnx" and "target:onnx" in plugins["onnx"]["registers"]


def test_doctor_json_reports_versions():
    proc = _edgest("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["torch"].startswith("2.") and data["cpu_count"] >= 1
    assert data["target onnx"].startswith("available; onnx ")


def test_help_lists_commands_without_importing_torch():
    code = "import sys; from edgest.cli import cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    proc = _edgest("--help")
    assert proc.returncode == 0 and all(c in proc.stdout for c in ("compile", "list", "doctor"))
