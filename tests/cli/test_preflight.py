"""Check before compiling: a model that ignores its input is found by one eager run, before any lowering.

bench refuses its cells at once, naming the fix (or compiles them on stand-in weights when asked);
compile warns right after its build stage and still writes its (incomplete) report.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from edgest import progress
from edgest.bench import run_bench
from edgest.checks.latency import LatencyConfig
from edgest.plan import plan
from edgest.stages import build

FAST = LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
_ENV_DROP = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "EDGEST_LOAD_PLUGINS", "EDGEST_DISABLE_PLUGIN_AUTOLOAD")


def test_bench_refuses_a_model_that_ignores_its_input_before_compiling_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    proc = subprocess.run([sys.executable, "-m", "edgest", "bench", "--models", "emov2_tiny_video", "--targets",
                           "onnx,executorch", "--precisions", "fp32,int8", "--out", "b", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert {c["status"] for c in doc["cells"]} == {"not_run"} and len(doc["cells"]) >= 4
    for c in doc["cells"]:
        assert "ignores its input" in c["error"] and "--weights" in c["error"], c["error"]
        assert "edgest train --model emov2_tiny_video --out w.pt" in c["error"] and "--stand-in-weights" in c["error"]
    assert not any((tmp_path / "b" / "cells").iterdir())  # nothing lowered, nothing written per cell
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgest: warning: not compiled: model 'emov2_tiny_video'")]
    assert len(warnings) == 1, proc.stderr


def test_one_refused_model_stops_the_whole_matrix_in_seconds(tmp_path: Path) -> None:
    # the README's example: a bench that would fail anyway must not compile the judgeable model's cells first
    doc = run_bench(["squeezetime_tiny", "emov2_tiny_video"], ["onnx"], ["fp32", "int8"], tmp_path / "b",
                    latency=FAST, samples=2)
    by_model = {c["model"]: c for c in doc["cells"] if c["in_matrix"]}
    assert {c["status"] for c in doc["cells"]} == {"not_run"}
    assert "stopped at the pre-flight because emov2_tiny_video cannot be judged" in by_model["squeezetime_tiny"]["error"]
    assert "leave it out of --models" in by_model["squeezetime_tiny"]["error"]
    assert "ignores its input" in by_model["emov2_tiny_video"]["error"]
    assert not any((tmp_path / "b" / "cells").iterdir())  # nothing compiled


def test_stand_in_weights_are_judged_for_accuracy_not_task_accuracy(tmp_path: Path) -> None:
    doc = run_bench(["emov2_tiny_video"], ["eager"], ["fp32"], tmp_path / "b", latency=FAST, samples=2,
                    stand_in_weights=True)
    weights = doc["settings"]["weights"]["emov2_tiny_video"]
    assert weights["kind"] == "stand-in" and Path(weights["path"]).is_file() and len(weights["sha256"]) == 64
    [cell] = doc["cells"]
    assert cell["status"] == "passed", cell["error"]
    assert cell["accuracy"]["status"] == "passed" and "task_top1" not in cell["accuracy"]
    again = run_bench(["emov2_tiny_video"], ["eager"], ["fp32"], tmp_path / "b", latency=FAST, samples=2,
                      stand_in_weights=True)
    assert again["cells"][0]["cached"] is True  # the same stand-ins, byte for byte: the cache holds


def test_compile_warns_right_after_the_build_stage(tmp_path: Path) -> None:
    out = io.StringIO()
    shown = progress.LogDisplay("compile emov2_tiny_video → eager", stream=out)
    the_plan = plan("emov2_tiny_video", "eager", out_dir=tmp_path / "run", samples=2)
    with progress.showing(shown):
        shown.stage("build", "start", 0.0)
        build.build(the_plan)
        shown.stage("build", "end", 1.0)
    lines = out.getvalue().splitlines()
    warning = next(i for i, ln in enumerate(lines) if ln.startswith("edgest: warning: model 'emov2_tiny_video' ignores its input"))
    assert lines[warning - 1].endswith("build …") and lines[warning + 1].endswith("build done in 1.0 s"), lines
    assert "edgest train --model emov2_tiny_video --out w.pt" in lines[warning] and "--weights" in lines[warning]
    out = io.StringIO()
    with progress.showing(progress.LogDisplay("compile", stream=out)):
        build.build(plan("squeezetime_tiny", "eager", out_dir=tmp_path / "run2", samples=2))
    assert "warning" not in out.getvalue()  # a model that responds: no warning


def test_optimize_refuses_a_model_that_ignores_its_input_with_its_own_options(tmp_path: Path) -> None:
    """The bench's fix reads ``--weights MODEL=w.pt``; optimize takes ``--weights w.pt`` and ``--stand-in-weights``."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    proc = subprocess.run([sys.executable, "-m", "edgest", "optimize", "--model", "emov2_tiny_video", "--targets", "onnx",
                           "--precisions", "fp32", "--out", "o"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 2, proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert line.startswith("edgest: error: model 'emov2_tiny_video' ignores its input at its initial weights"), line
    assert "--weights w.pt (Settings(weights='w.pt'))" in line and "--stand-in-weights (Settings(stand_in_weights=True))" in line
    assert "emov2_tiny_video=w.pt" not in line and not (tmp_path / "o" / "cells").exists()


def test_optimize_searches_on_stand_in_weights_when_asked(tmp_path: Path) -> None:
    from edgest.optimize import Settings, optimize

    settings = Settings(samples=2, stand_in_weights=True, latency=FAST)
    doc = optimize("emov2_tiny_video", tmp_path / "o", targets=["eager"], precisions=["fp32"], settings=settings,
                   finalists=1, rounds=1)
    assert doc["winner"]["target"] == "eager" and (tmp_path / "o" / "winner" / "report.json").is_file()
    assert (tmp_path / "o" / "stand-in-weights" / "emov2_tiny_video.pt").is_file()
