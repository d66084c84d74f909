"""The checks run in a child process: a runtime that segfaults, hangs, raises or is missing costs the
check, not the compile (edgest.checks.isolated / edgest.checks.worker, and through edgest.compile)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import edgest
from edgest.checks.isolated import ChildOutcome, run_in_child
from edgest.checks.latency import LatencyConfig
from edgest.plugins import new_plugin_manager

# pytest's default (prepend) import mode already puts this folder on sys.path; this keeps the helper
# importable under --import-mode=importlib too. The child gets sys.path through PYTHONPATH.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import crashy_targets  # noqa: E402

FAST = LatencyConfig(warmup=1, min_runs=2, min_seconds=0)
INPUTS = [[np.ones((2, 8), np.float32)] for _ in range(3)]


def _artifact(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"dummy artifact\n")
    return path


def _child(target: edgest.Target, tmp_path: Path, timeout_s: float = 60.0) -> tuple[ChildOutcome, float]:
    t0 = time.monotonic()
    outcome = run_in_child(target, _artifact(tmp_path), INPUTS, threads=1, latency=FAST, timeout_s=timeout_s)
    return outcome, time.monotonic() - t0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_helper_module_is_importable_by_name() -> None:
    # the child imports targets as module:qualname; make sure that name is the plain helper module
    assert crashy_targets.SegfaultTarget.__module__ == "crashy_targets"
    assert crashy_targets.__file__ is not None and Path(crashy_targets.__file__).parent == Path(_HERE)


# --- run_in_child directly ------------------------------------------------------------------------

def test_segfault_is_reported_not_raised(tmp_path: Path) -> None:
    outcome, _ = _child(crashy_targets.SegfaultTarget(), tmp_path)
    assert outcome.outputs is None
    assert outcome.latency is None
    assert outcome.unavailable == ""
    assert "SIGSEGV" in outcome.failure
    assert "crashed" in outcome.failure


def test_hang_is_killed_after_the_timeout(tmp_path: Path) -> None:
    outcome, seconds = _child(crashy_targets.HangTarget(), tmp_path, timeout_s=3)
    assert outcome.outputs is None
    assert outcome.latency is None
    assert "did not finish within 3 s" in outcome.failure
    assert "killed" in outcome.failure
    assert seconds < 30


def test_unavailable_at_load_is_not_a_failure(tmp_path: Path) -> None:
    outcome, _ = _child(crashy_targets.UnavailableAtLoadTarget(), tmp_path)
    assert outcome.outputs is None
    assert outcome.latency is None
    assert outcome.failure == ""
    assert "foo runtime not installed (pip install foo)" in outcome.unavailable


def test_runtime_exception_is_reported(tmp_path: Path) -> None:
    outcome, _ = _child(crashy_targets.RaisingTarget(), tmp_path)
    assert outcome.outputs is None
    assert outcome.latency is None
    assert outcome.unavailable == ""
    assert "runner failed" in outcome.failure
    assert "RuntimeError" in outcome.failure
    assert "kaboom in the vendor runtime" in outcome.failure


def test_outputs_before_a_crash_are_kept(tmp_path: Path) -> None:
    # crashes on the first latency run: the accuracy outputs were already written
    target = crashy_targets.LateSegfaultTarget(crash_after=len(INPUTS))
    program = _export_tiny_mlp()
    artifact = target.lower(program, (), tmp_path).path
    outcome = run_in_child(target, artifact, INPUTS, threads=1, latency=FAST, timeout_s=120)
    assert outcome.outputs is not None and len(outcome.outputs) == len(INPUTS)
    assert all(o[0].shape == (2, 4) for o in outcome.outputs)
    assert outcome.load.keys() >= {"cold_load_ms", "first_run_ms"}
    assert outcome.latency is None
    assert "SIGSEGV" in outcome.failure


def _kill_helper(pid_file: Path, wait_s: float) -> bool:
    """Whether the helper whose pid is in ``pid_file`` is still alive after ``wait_s``; kills it either way."""
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + wait_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _pid_alive(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)
    return alive


def test_timeout_kills_processes_the_runtime_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "helper.pid"
    target = crashy_targets.SpawningHangTarget(pid_file=str(pid_file))
    outcome, _ = _child(target, tmp_path, timeout_s=3)
    assert "did not finish within 3 s" in outcome.failure
    assert pid_file.exists(), "the runner did not get as far as starting its helper"
    assert not _kill_helper(pid_file, wait_s=2), "the runtime's helper process survived the check's timeout"


def test_segfault_is_reported_promptly_when_a_helper_holds_the_pipes(tmp_path: Path) -> None:
    pid_file = tmp_path / "helper.pid"
    target = crashy_targets.SpawningSegfaultTarget(pid_file=str(pid_file))
    try:
        outcome, seconds = _child(target, tmp_path, timeout_s=6)
    finally:
        if pid_file.exists():
            _kill_helper(pid_file, wait_s=0)
    assert "SIGSEGV" in outcome.failure, outcome.failure
    assert seconds < 5


# --- end to end through edgest.compile with a fresh registry --------------------------------------

def _export_tiny_mlp():
    import torch

    torch.manual_seed(0)
    return torch.export.export(crashy_targets.tiny_mlp().eval(), (torch.ones(2, 8),), strict=False)


@pytest.fixture(scope="module")
def registry():
    pm = new_plugin_manager(entry_points=False)
    pm.add(crashy_targets, "crashy")
    reg = pm.registry
    assert {"segv", "hang", "unavail", "raises", "late_segv", "eager"} <= set(reg.targets)
    assert "tiny_mlp" in reg.models
    return reg


def _compile(registry, target: str, out: Path, **kw) -> edgest.Report:
    kw.setdefault("latency", FAST)
    kw.setdefault("check_timeout_s", 120)
    return edgest.compile("tiny_mlp", target, out_dir=out, samples=3, registry=registry, **kw)


def _assert_run_folder(out: Path, report: edgest.Report) -> dict:
    assert out.is_dir()
    assert (out / "model.bin").read_bytes() == b"dummy artifact\n"
    assert report.artifact is not None and report.artifact.path == "model.bin"
    assert (out / "report.md").is_file()
    data = json.loads((out / "report.json").read_text())
    assert data["status"] == report.status
    assert not [p.name for p in out.parent.iterdir() if ".partial-" in p.name]
    return data


def test_compile_with_segfaulting_runtime_reports_failed(registry, tmp_path: Path) -> None:
    out = tmp_path / "run"
    report = _compile(registry, "segv", out)
    assert report.status == "failed"
    acc, lat = report.check("accuracy"), report.check("latency")
    assert acc is not None and acc.status == "run_failed"
    assert "SIGSEGV" in acc.reason
    assert lat is not None and lat.status == "run_failed"
    assert "SIGSEGV" in report.error
    data = _assert_run_folder(out, report)
    assert data["checks"][0]["status"] == "run_failed"


def test_compile_with_hanging_runtime_reports_failed(registry, tmp_path: Path) -> None:
    out = tmp_path / "run"
    t0 = time.monotonic()
    report = _compile(registry, "hang", out, check_timeout_s=5)
    assert time.monotonic() - t0 < 60
    assert report.status == "failed"
    acc = report.check("accuracy")
    assert acc is not None and acc.status == "run_failed"
    assert "did not finish" in acc.reason and "5 s" in acc.reason
    _assert_run_folder(out, report)


def test_compile_with_runtime_missing_at_load_is_incomplete(registry, tmp_path: Path) -> None:
    out = tmp_path / "run"
    report = _compile(registry, "unavail", out)
    assert report.status == "incomplete"
    assert [c.status for c in report.checks] == ["not_run", "not_run"]
    assert all("pip install foo" in c.reason for c in report.checks)
    _assert_run_folder(out, report)


def test_compile_with_raising_runtime_reports_failed(registry, tmp_path: Path) -> None:
    out = tmp_path / "run"
    report = _compile(registry, "raises", out)
    assert report.status == "failed"
    acc = report.check("accuracy")
    assert acc is not None and acc.status == "run_failed"
    assert "RuntimeError: kaboom in the vendor runtime" in acc.reason
    _assert_run_folder(out, report)


def test_compile_crash_during_latency_keeps_accuracy(registry, tmp_path: Path) -> None:
    out = tmp_path / "run"
    report = _compile(registry, "late_segv", out, target_options={"crash_after": 3})
    acc, lat = report.check("accuracy"), report.check("latency")
    assert acc is not None and acc.status == "passed"
    assert acc.metrics["samples"] == 3 and acc.metrics["sqnr_db"] >= 40
    assert lat is not None and lat.status == "run_failed" and "SIGSEGV" in lat.reason
    assert report.status == "failed"
    assert (out / "model.pt2").is_file() and (out / "report.json").is_file()
