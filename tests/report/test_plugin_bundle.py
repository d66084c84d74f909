"""A third-party-style target makes device bundles through the contract alone.

The ``npmlp`` target (npmlp_plugin.py, a plugin edgest knows nothing about) names its device
runner (npmlp_device.py, NumPy only) and its runtime requirements; ``edgest bundle`` copies
that runner into the bundle, and the bundle runs with the current Python, importing neither
edgest nor torch. A target without a device runner is refused with one line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import edgest
from edgest.bundle import build_bundle, merge_device_reports
from edgest.errors import TargetUnavailable, Unsupported
from edgest.plugins import new_plugin_manager
from edgest.report.writers import read_json, write_reports
from edgest.testing.fake_dist import write_fake_distribution

# pytest's default import mode puts this folder on sys.path; this keeps the plugin importable under
# --import-mode=importlib too (the check's child process gets sys.path through PYTHONPATH)
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import npmlp_device  # noqa: E402
import npmlp_plugin  # noqa: E402

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0)


@pytest.fixture(scope="module")
def registry():
    pm = new_plugin_manager(entry_points=False)
    pm.add(npmlp_plugin, "npmlp")
    return pm.registry


@pytest.fixture(scope="module")
def npmlp_run(registry, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "npmlp"
    report = edgest.compile("npmlp_tiny", "npmlp", out_dir=out, samples=4, latency=FAST, registry=registry)
    assert report.status == "passed", report.error
    return out


def _cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of an edgest that has the npmlp plugin installed as a distribution (entry point)."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    write_fake_distribution(plugins, "npmlp", "from npmlp_plugin import register_models, register_targets\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), _HERE])}


def _without_plugin_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


#: run the bundle's script, then report which of edgest, torch and the plugin's own modules it imported
_RUN_AND_LIST_IMPORTS = """
import runpy, sys
sys.argv = ["run_on_device.py", "--runs", "3", "--seconds", "0", "--threads", "2", "--device-name", "plugin-device"]
try:
    runpy.run_path("run_on_device.py", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print(code, sorted({m.split(".")[0] for m in sys.modules} & {"edgest", "torch", "npmlp_device", "npmlp_plugin"}))
"""


def test_edgest_bundle_runs_a_plugin_targets_own_runner(npmlp_run: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    made = subprocess.run([sys.executable, "-m", "edgest", "bundle", str(npmlp_run), "--out", str(bundle)],
                          env=_cli_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert (bundle / "edgest_device_runner.py").read_text() == Path(npmlp_device.__file__).read_text()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["runtime_install"] == [["numpy"]] and manifest["runtime"] == "npmlp"
    assert "python -m pip install numpy\n" in (bundle / "README.txt").read_text()

    done = subprocess.run([sys.executable, "-c", _RUN_AND_LIST_IMPORTS], cwd=bundle, env=_without_plugin_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"  # passed, with the bundle's copy of the runner only
    device = json.loads((bundle / "device-report.json").read_text())
    assert device["accuracy"]["status"] == "passed" and device["accuracy"]["sqnr_db"] > 60
    assert device["device"]["runner"] == "npmlp (NumPy)" and device["latency"]["threads"] == 2
    assert device["latency"]["p50_ms"] > 0

    lines = merge_device_reports(npmlp_run, [bundle / "device-report.json"])
    assert lines and "plugin-device" in lines[0]
    merged = read_json(npmlp_run / "report.json")
    assert any(c.kind == "latency" and c.host.get("name") == "plugin-device" for c in merged.checks)


def _as_target(run: Path, where: Path, target: str) -> Path:
    """A copy of ``run`` whose report names ``target`` (same artifact)."""
    shutil.copytree(run, where)
    report = read_json(where / "report.json")
    artifact = dataclasses.replace(report.artifact, target=target)
    write_reports(dataclasses.replace(report, target=target, artifact=artifact), where)
    return where


def test_a_target_without_device_runner_is_refused_in_one_line(npmlp_run: Path, registry, tmp_path: Path) -> None:
    run = _as_target(npmlp_run, tmp_path / "run", "npmlp_nobundle")
    with pytest.raises(Unsupported) as err:
        build_bundle(run, tmp_path / "bundle", registry=registry)
    message = str(err.value)
    assert "target 'npmlp_nobundle' cannot make device bundles" in message
    assert "Target.device_runner" in message and "Target.runtime_requirements" in message
    assert not (tmp_path / "bundle").exists()
    cli = subprocess.run([sys.executable, "-m", "edgest", "bundle", str(run), "--out", str(tmp_path / "bundle")],
                         env=_cli_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert cli.returncode == 1 and cli.stderr == f"edgest: error: {message}\n"
    assert not (tmp_path / "bundle").exists()


def test_a_run_whose_target_is_not_installed_names_it(npmlp_run: Path, tmp_path: Path) -> None:
    bare = new_plugin_manager(entry_points=False).registry  # the npmlp plugin is not installed here
    with pytest.raises(TargetUnavailable, match="compiled for target 'npmlp', which no installed plugin provides"):
        build_bundle(npmlp_run, tmp_path / "bundle", registry=bare)
    assert not (tmp_path / "bundle").exists()
