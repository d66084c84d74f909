"""list and doctor: tables for people, --json for scripts."""

from __future__ import annotations

import json
import subprocess
import sys


def _edgest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgest", *args], capture_output=True, text=True, timeout=300)


def test_list_json_shows_models_targets_and_plugins():
    proc = _edgest("list", "--stats", "--json")  # --stats: measure what the user cache lacks (a plain list shows the cache)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    models = {m["name"]: m for m in data["models"]}
    assert models["squeezetime"]["input"] == "1x3x16x224x224"
    assert models["squeezetime"]["params"] == 29_706_688
    assert round(models["squeezetime"]["macs"] / 1e9, 3) == 5.483
    assert 0 < models["lmuformer_tiny"]["macs"] < 1e6  # a small sequence model has MACs, just few
    targets = {t["name"]: t for t in data["targets"]}
    assert targets["onnx"]["available"] == "yes" and targets["eager"]["format"] == "pt2"
    plugins = {p["name"]: p for p in data["plugins"]}
    assert plugins["onnx"]["distribution"] == "edgest-onnx" and "target:onnx" in plugins["onnx"]["registers"]


def test_list_models_table_keeps_names_and_small_macs():
    proc = _edgest("list", "models", "--stats")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.count("│") > 2}
    assert "lmuformer_spiking_tiny" in rows and "lmuformer_video_tiny" in rows  # not cut to fit 80 columns
    assert "0.000" not in proc.stdout and " k " in rows["lmuformer_tiny"]  # tiny MACs in k, not 0.000 G
    assert "5.48 G" in rows["squeezetime"] and "29,706,688" in rows["squeezetime"]


def test_list_plugins_folds_a_long_registers_list_instead_of_padding_every_row():
    proc = _edgest("list", "plugins")  # off a terminal: figures stay whole, but a list of 25 models folds
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) < 200  # was about 600 columns on every row
    text = "".join(line.split("│")[5] for line in lines if line.count("│") > 5)  # the registers column's cells
    assert "model:squeezetime" in text.replace(" ", "") and "target:onnx" in text


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


def test_doctor_names_a_missing_toolchain_once():
    from edgest.inventory import _target_status
    from edgest.target import Target

    class Missing(Target):
        name, requires, toolchain = "missing", ("edgest_no_such_pkg",), ("edgest_no_such_pkg", "onnx")
        install_hint = "pip install edgest_no_such_pkg"

    line = _target_status(Missing)
    assert line.startswith("unavailable: edgest_no_such_pkg not installed (pip install edgest_no_such_pkg); onnx 1.")
    assert line.count("not installed") == 1
