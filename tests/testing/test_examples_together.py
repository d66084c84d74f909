"""The three example plugins work together as a third party would use them: the example model, through
the example pass, on the example target, and into a device bundle that runs with no edgest."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import edgest
from edgest.bundle.build import build_bundle
from edgest.checks.latency import LatencyConfig
from edgest.plugins import new_plugin_manager

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_model_pass_and_target_compile_bundle_and_run_on_a_device(tmp_path: Path, monkeypatch) -> None:
    for example in ("target", "pass", "model"):
        monkeypatch.syspath_prepend(str(EXAMPLES / example))
    pm = new_plugin_manager(entry_points=False)
    for name in ("edgest_example_target", "edgest_example_pass", "edgest_example_model"):
        assert pm.add(importlib.import_module(f"{name}.plugin"), name) is None, pm.load_errors
    report = edgest.compile("example_video_tiny", "example-pt2", passes=[("fuse-bn", {"tolerance": 1e-3})],
                            out_dir=tmp_path / "run", registry=pm.registry, samples=2,
                            latency=LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0))
    assert report.status == "passed", report.error
    assert report.passes[0].details["folded"] == 3  # the three conv → batch norm pairs of TinyVideoNet
    bundle = build_bundle(tmp_path / "run", tmp_path / "bundle", registry=pm.registry)
    manifest = json.loads((bundle / "manifest.json").read_text())
    torch_version = report.artifact.toolchain["torch"].partition("+")[0]
    assert manifest["runtime_install"] == [["numpy", f"torch=={torch_version}"]] and manifest["runtime"] == "torch"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import runpy, sys\nsys.argv = ['run_on_device.py', '--runs', '3', '--seconds', '0']\n"
            "try:\n    runpy.run_path('run_on_device.py', run_name='__main__')\nexcept SystemExit as exc:\n    code = exc.code\n"
            "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'edgest', 'edgest_example_target'}))")
    proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=bundle, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr
    device = json.loads((bundle / "device-report.json").read_text())
    assert device["target"] == "example-pt2" and device["accuracy"]["status"] == "passed", device["accuracy"]
