"""Files edgest writes: atomic (a full disk or Ctrl-C at any write leaves the previous file whole), JSON that
never fails on NaN/Inf, and ownership (``--force`` replaces only a folder edgest marked as its own, of the
same kind; stale staging and temporary folders of killed runs are removed by the next run).

CLI cases run ``edgest.cli.main`` in-process (a subprocess costs seconds of imports each).
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import edgest
from edgest import fsio
from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput
from edgest.outdir import MARKER, check_output, read_marker, staged_output, sweep_stale_staging, temp_folder
from edgest.records import Report
from edgest.report.writers import read_json, render_markdown, write_reports
from edgest.testing.stage_log import error_lines

FAST = LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)


def cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run ``edgest ARGS`` in-process: (exit code, stderr)."""
    from edgest.cli import main

    monkeypatch.setattr("edgest.interrupts.install", lambda: None)  # keep pytest's own SIGINT handling
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(args)
    return int(exit_.value.code or 0), capsys.readouterr().err


def one_line_error(code: int, err: str, *words: str, absent: tuple[str, ...] = ("--force",)) -> str:
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("edgest: error: "), (code, err)
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"
    for w in absent:
        assert w not in lines[0], f"{w!r} must not be suggested: {lines[0]!r}"
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def eager_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    edgest.compile("squeezetime_tiny", "eager", out_dir=out, samples=1, latency=FAST)
    return out


@pytest.fixture
def run(eager_run: Path, tmp_path: Path) -> Path:
    """A private copy of the eager run (marker included)."""
    return Path(shutil.copytree(eager_run, tmp_path / "run"))


COMPILE = ["compile", "--model", "squeezetime_tiny", "--target", "eager", "--samples", "1"]


# --- atomic writes ----------------------------------------------------------------------------------

def _fail_at(monkeypatch: pytest.MonkeyPatch, name: str, nth: int, exc: BaseException) -> None:
    """Make the ``nth`` call of ``os.<name>`` inside edgest.fsio raise ``exc``."""
    real, calls = getattr(os, name), {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(fsio.os, name, failing)


def _no_temporaries(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".edgest-tmp-" in p.name]


FAULTS = [pytest.param(OSError(errno.ENOSPC, "No space left on device"), id="ENOSPC"),
          pytest.param(KeyboardInterrupt(), id="Ctrl-C")]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_a_failed_write_leaves_the_previous_file_whole(tmp_path, monkeypatch, where, fault):
    path = tmp_path / "report.json"
    path.write_text('{"old": true}\n')
    _fail_at(monkeypatch, where, 1, fault)
    if isinstance(fault, OSError):
        with pytest.raises(BadInput, match=r"no space left writing '.*report.json'.*free some space"):
            fsio.atomic_write_text(path, '{"new": true}\n')
    else:
        with pytest.raises(KeyboardInterrupt):
            fsio.atomic_write_text(path, '{"new": true}\n')
    assert path.read_text() == '{"old": true}\n'
    _no_temporaries(tmp_path)


def _reports_pair(run: Path) -> tuple[Report, Report]:
    report = read_json(run / "report.json")
    return report, replace(report, checks=(replace(report.check("accuracy"), reason="rewritten"),))


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("nth", [1, 2])
def test_fault_at_each_write_of_a_run_report_leaves_each_file_old_or_new(run, monkeypatch, nth, fault):
    """report.json and report.md: a fault while writing either leaves both as they were."""
    before = snapshot(run)
    _, newer = _reports_pair(run)
    _fail_at(monkeypatch, "fsync", nth, fault)
    with pytest.raises((BadInput, KeyboardInterrupt)):
        write_reports(newer, run)
    assert snapshot(run) == before
    _no_temporaries(run)
    monkeypatch.undo()
    write_reports(newer, run)  # and without the fault both change
    assert read_json(run / "report.json").check("accuracy").reason == "rewritten"


def test_a_folder_edgest_may_not_write_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old")

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", denied)  # as root a chmod 0o500 folder would not stop the write
    with pytest.raises(BadInput, match=r"cannot write '.*report.json': Permission denied; make its folder writable"):
        fsio.atomic_write_text(path, "new")
    assert path.read_text() == "old"


def test_checkpoint_written_atomically(tmp_path, monkeypatch):
    import torch

    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(2)}, path)
    before = path.read_bytes()

    def half_then_full(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    state = {"w": torch.ones(2)}
    monkeypatch.setattr(torch, "save", half_then_full)
    with pytest.raises(BadInput, match="no space left writing .*w.pt"):
        fsio.atomic_save(path, lambda fh: torch.save(state, fh))
    assert path.read_bytes() == before
    _no_temporaries(tmp_path)


def test_a_temporary_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".bench.json.edgest-tmp-{int(dead.stdout)}-x1y2"
    live = tmp_path / f".bench.json.edgest-tmp-{os.getpid()}-a1b2"
    stale.write_text("half")
    live.write_text("being written")
    fsio.atomic_write_text(tmp_path / "bench.json", "{}\n")
    assert not stale.exists() and live.exists()


# --- JSON never raises on non-finite values ---------------------------------------------------------

def test_dumps_json_writes_non_finite_as_null():
    doc = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": np.float32("nan"), "d": np.array([1.0, np.inf]),
           "e": (np.int64(3), "x")}
    text = fsio.dumps_json(doc)

    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    assert json.loads(text, parse_constant=refuse) == {"a": None, "b": [None, None, 1.5], "c": None, "d": [1.0, None], "e": [3, "x"]}


def test_report_with_nan_figures_is_written_and_read_back(run):
    report, _ = _reports_pair(run)
    acc = report.check("accuracy")
    bad = replace(report, checks=(replace(acc, metrics={**acc.metrics, "sqnr_db": math.nan, "max_abs": math.inf}),))
    write_reports(bad, run)  # the old writer raised ValueError: Out of range float values are not JSON compliant
    data = json.loads((run / "report.json").read_text(), parse_constant=lambda t: pytest.fail(t))
    assert data["checks"][0]["metrics"]["sqnr_db"] is None and data["checks"][0]["metrics"]["max_abs"] is None
    assert "| sqnr_db | – |" in render_markdown(read_json(run / "report.json"))


def test_bench_document_with_nan_stays_schema_valid(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from edgest.report.bench_writers import write_bench_reports

    schema = json.loads((Path(edgest.__file__).parent / "report" / "schema" / "bench.schema.json").read_text())
    cell = {"model": "m", "target": "eager", "precision": "fp32", "passes": [], "key": "k", "cached": False, "status": "failed",
            "error": "", "accuracy": {"sqnr_db": math.nan, "top1_agreement": math.nan, "max_abs": math.inf},
            "latency": {"p50_ms": math.inf, "p90_ms": 1.0}, "artifact": None, "toolchain": {}, "budget_violations": [],
            "speedup_vs_eager": math.nan, "run_dir": "cells/x"}
    doc = {"schema_version": "1.0", "kind": "edgest-bench", "created": "now", "settings": {"threads": 1, "models": ["m"],
           "targets": ["eager"], "precisions": ["fp32"], "passes": [], "budget": {}},
           "host": {"cpu": "c", "cpu_count": 1, "os": "linux", "machine": "x86_64"}, "cells": [cell], "device_results": []}
    write_bench_reports(doc, tmp_path)
    written = json.loads((tmp_path / "bench.json").read_text())
    jsonschema.validate(written, schema)
    assert written["cells"][0]["accuracy"]["sqnr_db"] is None
    assert "| m | eager | fp32 |" in (tmp_path / "report.md").read_text()


# --- ownership before destruction -------------------------------------------------------------------

def test_force_on_the_working_directory_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    code, err = cli([*COMPILE, "--out", ".", "--force"], capsys, monkeypatch)
    one_line_error(code, err, "is the working directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("case", ["git repo", "foreign files", "home", "parent of cwd"])
def test_force_on_folders_edgest_did_not_make_is_refused(tmp_path, monkeypatch, capsys, case):
    target = tmp_path / "project"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    if case == "git repo":
        (target / ".git").mkdir()
        (target / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    if case == "home":
        monkeypatch.setenv("HOME", str(target))
    work = target / "sub" if case == "parent of cwd" else tmp_path
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    before = snapshot(target)
    code, err = cli([*COMPILE, "--out", str(target), "--force"], capsys, monkeypatch)
    why = {"git repo": "holds a git repository", "foreign files": "edgest did not create it", "home": "is your home folder",
           "parent of cwd": "holds the working directory"}[case]
    one_line_error(code, err, why)
    assert snapshot(target) == before


@pytest.mark.parametrize("kind", ["run", "bundle", "bench"])
def test_the_filesystem_root_is_never_an_output_folder(kind):
    with pytest.raises(BadInput, match="is the filesystem root") as info:  # only the check: nothing is written or removed
        check_output(Path("/"), force=True, kind=kind)
    assert "--force" not in str(info.value)


def test_force_through_a_symlink_is_refused(run, tmp_path, monkeypatch, capsys):
    link = tmp_path / "link"
    link.symlink_to(run)
    before = snapshot(run)
    code, err = cli([*COMPILE, "--out", str(link), "--force"], capsys, monkeypatch)
    one_line_error(code, err, "symbolic link")
    assert link.is_symlink() and snapshot(run) == before


def test_force_replaces_an_edgest_run_folder(run, monkeypatch, capsys):
    old = read_marker(run)
    assert old is not None and old["kind"] == "run" and set(old["files"]) >= {"report.json", "report.md", "reference.npz"}
    code, err = cli([*COMPILE, "--out", str(run)], capsys, monkeypatch)
    one_line_error(code, err, "already exists", "pass --force", absent=())  # safe here: it is edgest's run
    (run / "model.pt2").unlink()  # forcing restores what a run holds
    code, err = cli([*COMPILE, "--out", str(run), "--force"], capsys, monkeypatch)
    assert code == 0, err
    assert (run / "model.pt2").is_file() and read_marker(run)["kind"] == "run"


def test_force_refuses_a_run_folder_holding_user_files(run, monkeypatch, capsys):
    (run / "my-notes.md").write_text("results I care about")
    code, err = cli([*COMPILE, "--out", str(run), "--force"], capsys, monkeypatch)
    one_line_error(code, err, "holds files edgest did not write (my-notes.md)")
    assert (run / "my-notes.md").read_text() == "results I care about"


def test_folder_of_an_older_edgest_is_refused_with_how_to_delete_it(run, monkeypatch, capsys):
    (run / MARKER).unlink()
    before = snapshot(run)
    code, err = cli([*COMPILE, "--out", str(run), "--force"], capsys, monkeypatch)
    one_line_error(code, err, "older edgest", "delete it yourself")
    assert snapshot(run) == before


@pytest.mark.parametrize("kind, legacy", [("bench", "bench.json"), ("run", "report.json")])
def test_a_damaged_marker_is_called_damaged_not_missing(tmp_path, kind, legacy):
    out = tmp_path / "out"
    out.mkdir()
    (out / legacy).write_text("{}")
    (out / MARKER).write_text("{bad")
    with pytest.raises(BadInput, match=rf"^output folder '.*out' has a damaged \{MARKER} marker \(not valid JSON, or no "
                                       r"kind\), so edgest cannot tell what made it and does not replace it; delete the "
                                       r"folder yourself or choose another --out \(out_dir=\)$"):
        check_output(out, kind=kind)
    assert (out / MARKER).read_text() == "{bad"


def test_a_folder_of_another_kind_is_never_replaced(run, tmp_path):
    before = snapshot(run)
    with pytest.raises(BadInput, match="is an edgest run folder, not a bundle folder") as info:
        with staged_output(run, force=True, kind="bundle"):
            pass
    assert "--force" not in str(info.value) and snapshot(run) == before


def test_bundle_into_its_own_run_is_refused(run, monkeypatch, capsys):
    before = snapshot(run)
    for out in (run, run.parent):
        code, err = cli(["bundle", str(run), "--out", str(out), "--force"], capsys, monkeypatch)
        one_line_error(code, err, "would replace the run")
    assert snapshot(run) == before


def test_bench_never_writes_into_a_folder_it_does_not_own(run, tmp_path, monkeypatch, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.md").write_text("# my project's report\n")
    args = ["bench", "--models", "squeezetime_tiny", "--targets", "eager"]
    code, err = cli([*args, "--out", str(docs)], capsys, monkeypatch)
    one_line_error(code, err, "edgest did not create it")
    assert sorted(p.name for p in docs.iterdir()) == ["report.md"] and (docs / "report.md").read_text() == "# my project's report\n"
    code, err = cli([*args, "--out", str(run)], capsys, monkeypatch)
    one_line_error(code, err, "is an edgest run folder, not a bench folder")


def _tiny_checkpoint(path: Path) -> bytes:
    import torch

    torch.save({"w": torch.zeros(1)}, path)
    return path.read_bytes()


def test_train_refuses_an_existing_checkpoint_unless_forced(tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / "existing.pt"
    before = _tiny_checkpoint(ckpt)
    args = ["train", "--model", "squeezetime_tiny", "--out", str(ckpt), "--epochs", "1", "--train-clips", "16", "--val-clips", "10"]
    code, err = cli(args, capsys, monkeypatch)
    one_line_error(code, err, "already exists", "pass --force", absent=())
    assert ckpt.read_bytes() == before
    readme = tmp_path / "README.md"
    readme.write_text("not a checkpoint")
    code, err = cli([*args[:4], str(readme), *args[5:], "--force"], capsys, monkeypatch)
    one_line_error(code, err, "not a PyTorch checkpoint")
    assert readme.read_text() == "not a checkpoint"
    code, err = cli([*args, "--force"], capsys, monkeypatch)
    assert code == 0, err
    import torch

    from edgest_models.squeezetime import squeezetime_tiny

    assert set(torch.load(ckpt, weights_only=True)) == set(squeezetime_tiny().state_dict())
    _no_temporaries(tmp_path)


# --- stale staging and temporary folders ------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _stage(parent: Path, name: str, pid: int | None) -> Path:
    stage = parent / name
    stage.mkdir()
    (stage / "model.pt2").write_bytes(b"half")
    if pid is not None:
        import socket

        (stage / MARKER).write_text(json.dumps({"kind": "run", "pid": pid, "host": socket.gethostname()}))
    return stage


def test_stale_staging_of_a_killed_run_is_removed_by_the_next_run(tmp_path):
    out = tmp_path / "run"
    stale = _stage(tmp_path, ".run.partial-dead1", _dead_pid())
    running = _stage(tmp_path, ".run.partial-live1", os.getpid())  # a run still at work: left alone
    unknown = _stage(tmp_path, ".run.partial-nomark", None)  # no owner record: not provably edgest's
    other = _stage(tmp_path, ".other.partial-dead2", _dead_pid())  # another destination's
    with staged_output(out) as stage:
        (stage / "x").write_text("y")
    assert not stale.exists() and running.exists() and unknown.exists() and other.exists()
    assert (out / "x").read_text() == "y"
    assert sweep_stale_staging(tmp_path / "other") == [other]


def test_stale_temporary_folder_is_removed_on_next_use(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    import socket

    stale = tmp_path / "edgest-test-old"
    stale.mkdir()
    (stale / ".edgest-owner.json").write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    foreign = tmp_path / "edgest-test-foreign"  # no owner record: not ours to delete
    foreign.mkdir()
    with temp_folder("edgest-test-") as tmp:
        assert tmp.is_dir() and not stale.exists() and foreign.exists()
    assert not tmp.exists()
