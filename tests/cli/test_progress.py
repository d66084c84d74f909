"""Progress on stderr: timestamped stage lines off a terminal, warnings at once, bad input still one line, an ETA."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edgest import progress
from edgest.progress import BenchProgress, Eta, LogDisplay, cell_estimate
from edgest.testing.stage_log import error_lines

STAGES = ("plan", "build", "capture", "passes", "lower", "quantize", "checks", "report")
STAMP = r"\d\d:\d\d:\d\d"
# variables that would make rich treat the pipe as a terminal
_ENV_DROP = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "EDGEST_LOAD_PLUGINS", "EDGEST_DISABLE_PLUGIN_AUTOLOAD")


def _edgest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    return subprocess.run([sys.executable, "-m", "edgest", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_a_compile_log_shows_every_stage_with_timestamps(tmp_path: Path) -> None:
    proc = _edgest(tmp_path, "compile", "--model", "squeezetime_tiny", "--target", "eager", "--out", "run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    for stage in STAGES:
        start = [ln for ln in lines if re.fullmatch(rf"{STAMP} compile squeezetime_tiny → eager: {stage} …", ln)]
        end = [ln for ln in lines if re.fullmatch(rf"{STAMP} compile squeezetime_tiny → eager: {stage} done in \d+\.\d s", ln)]
        assert len(start) == 1 and len(end) == 1, (stage, proc.stderr)
        assert lines.index(start[0]) < lines.index(end[0])
    order = [next(i for i, ln in enumerate(lines) if ln.endswith(f": {s} …")) for s in STAGES]
    assert order == sorted(order), proc.stderr
    assert "squeezetime_tiny → eager" in proc.stdout and "│" in proc.stdout  # the report table, on stdout


def test_quiet_shows_no_progress_and_bad_input_stays_one_line(tmp_path: Path) -> None:
    (tmp_path / "w.pt").write_bytes(b"not a checkpoint")
    bad = _edgest(tmp_path, "compile", "--model", "squeezetime_tiny", "--target", "eager", "--weights", "w.pt")
    assert bad.returncode == 2 and bad.stderr.splitlines() == [bad.stderr.strip()], bad.stderr  # found in build: held back
    assert bad.stderr.startswith("edgest: error: cannot read weights 'w.pt'")
    both = _edgest(tmp_path, "compile", "--model", "squeezetime_tiny", "--target", "eager", "-q", "-v")
    assert both.returncode == 2 and "--quiet and --verbose" in both.stderr


def _log(**kw: object) -> tuple[LogDisplay, io.StringIO]:
    out = io.StringIO()
    return LogDisplay("compile m → t", stream=out, **kw), out  # type: ignore[arg-type]


def test_log_lines_details_and_a_held_stage_dropped_on_failure() -> None:
    shown, out = _log(verbosity="verbose")
    with progress.showing(shown):
        shown.stage("build", "start", 0.0)
        shown.stage("build", "end", 1.25)
        shown.stage("passes", "start", 0.0)
        progress.detail("pass quantize")
        progress.warn("something odd; do this")
        shown.stage("passes", "end", 3.0)
    text = out.getvalue()
    assert re.search(rf"^{STAMP} compile m → t: build done in 1\.2 s$", text, re.M)
    assert re.search(rf"^{STAMP} compile m → t: passes: pass quantize$", text, re.M)
    assert "edgest: warning: something odd; do this\n" in text
    progress.warn("no display: nothing")  # outside showing(): the Python API prints nothing
    assert "no display" not in out.getvalue()

    held, out = _log(hold="build")
    with pytest.raises(ValueError), progress.showing(held):
        held.stage("plan", "start", 0.0)
        held.stage("plan", "end", 0.5)
        held.stage("build", "start", 0.0)
        raise ValueError("bad weights")
    assert out.getvalue() == ""  # the error line alone says it

    held, out = _log(hold="build")
    with pytest.raises(ValueError), progress.showing(held):
        held.stage("build", "start", 0.0)
        held.stage("build", "end", 0.5)
        held.stage("lower", "start", 0.0)
        raise ValueError("unsupported op")
    assert "build done in 0.5 s" in out.getvalue() and re.search(r"lower stopped after \d+\.\d s", out.getvalue())


def test_a_long_stage_gets_still_running_lines() -> None:
    shown, out = _log(heartbeat_s=0.01)
    seen = threading.Event()
    with progress.showing(shown):
        shown.stage("quantize", "start", 0.0)
        for _ in range(500):
            if "quantize still running" in out.getvalue():
                seen.set()
                break
            seen.wait(0.01)
        shown.stage("quantize", "end", 1.0)
    assert seen.is_set(), out.getvalue()


def test_a_heartbeat_shows_a_held_log_and_only_then_may_a_failure_print_more_than_its_line() -> None:
    held, out = _log(hold="build", heartbeat_s=0.01)
    with pytest.raises(ValueError), progress.showing(held):
        held.stage("plan", "start", 0.0)
        held.stage("plan", "end", 0.1)
        held.stage("build", "start", 0.0)
        for _ in range(500):
            if "build still running" in out.getvalue():
                break
            threading.Event().wait(0.01)
        raise ValueError("unreadable clip")
    text = out.getvalue() + "edgest: error: cannot read video file 'a.mp4'\n"
    assert re.search(rf"^{STAMP} compile m → t: plan done in 0\.1 s$", text, re.MULTILINE), text
    assert error_lines(text) == ["edgest: error: cannot read video file 'a.mp4'"]
    no_heartbeat = "\n".join(line for line in text.splitlines() if "still running" not in line)
    with pytest.raises(AssertionError, match="stage log shown without a heartbeat"):
        error_lines(no_heartbeat)


def test_eta_from_past_timings(tmp_path: Path) -> None:
    past = tmp_path / "a"
    past.mkdir()
    (past / "report.json").write_text('{"stage_seconds": {"build": 2.0, "checks": 8.0}}')
    assert cell_estimate(past, cache_looks_valid=True) == 10.0  # no cell.key: it compiles again
    (past / "cell.key").write_text("k")
    assert cell_estimate(past, cache_looks_valid=True) == 0.5 and cell_estimate(past, cache_looks_valid=False) == 10.0
    assert cell_estimate(tmp_path / "never-ran", True) is None

    eta = Eta([10.0, None, 30.0])
    assert eta.left() == 60.0  # the unknown cell counts as the mean of the known ones
    assert eta.left(current=0, elapsed=4.0) == 56.0
    eta.finish(0, 12.0)
    assert eta.left(current=1, elapsed=25.0) == 30.0  # the running cell past its estimate counts as nearly done
    assert Eta([None, None]).left() is None


def test_bench_lines_count_cells_and_name_the_stage() -> None:
    class Cell:
        def __init__(self, label: str) -> None:
            self.label = label

    shown, out = _log()
    watch = BenchProgress(shown, [20.0, 20.0])
    with progress.showing(shown):
        watch.on_cell(Cell("m / onnx / fp32"), "running", 0, 2)
        watch.stage("lower", "start", 0.0)
        watch.stage("lower", "end", 1.0)
        watch.on_cell(Cell("m / onnx / fp32"), "passed", 1, 2)
        watch.on_cell(Cell("m / eager / fp32"), "cached", 2, 2)
    text = out.getvalue()
    assert re.search(rf"^{STAMP} bench \[1/2\] m / onnx / fp32: lower …$", text, re.M), text
    assert re.search(rf"^{STAMP} ✓ \[1/2\] m / onnx / fp32: passed in \d+\.\d s; ETA 20 s$", text, re.M), text
    assert re.search(rf"^{STAMP} ✓ \[2/2\] m / eager / fp32: cached$", text, re.M), text
