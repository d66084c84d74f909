"""A bench folder that was tampered with: a cell that lost its marker is recompiled; a file where the cells go is
one line (the outside round: "shows an error instead of recompiling", "File exists")."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgest.bench import run_bench
from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput
from edgest.testing.processes import lock_held_elsewhere

FAST = LatencyConfig(warmup=0, min_runs=2, min_seconds=0.0)


def _bench(out: Path) -> dict:
    return run_bench(["squeezetime_tiny"], ["eager"], ["fp32"], out, latency=FAST, samples=2)


def test_a_cell_without_its_marker_is_recompiled(tmp_path: Path) -> None:
    out = tmp_path / "b"
    _bench(out)
    [cell] = (out / "cells").iterdir()
    (cell / ".edgest.json").unlink()
    doc = _bench(out)
    [rec] = doc["cells"]
    assert rec["status"] == "passed" and rec["cached"] is False, rec["error"]
    assert (cell / ".edgest.json").is_file()


def test_a_foreign_folder_where_a_cell_goes_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "b"
    _bench(out)
    [cell] = (out / "cells").iterdir()
    for f in cell.iterdir():
        f.unlink()
    (cell / "notes.txt").write_text("mine")  # not a cell's files: never removed
    doc = _bench(out)
    assert doc["cells"][0]["status"] == "error" and "holds files edgest did not write; move them out" in doc["cells"][0]["error"]
    assert (cell / "notes.txt").read_text() == "mine"


def test_a_file_where_the_cells_go_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "b"
    _bench(out)
    import shutil

    shutil.rmtree(out / "cells")
    (out / "cells").write_text("not a folder")
    with pytest.raises(BadInput, match="is a file, where the bench keeps its cells"):
        _bench(out)
    assert (out / "cells").read_text() == "not a folder"


def test_a_second_bench_into_a_folder_in_use_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """Two benches into one folder: the second recompiled the first's live cells ("holds files edgest did not
    write") and replaced its bench.json and reports with its own failures."""
    out = tmp_path / "b"
    _bench(out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    refusal = (r"^bench folder '.*b' is being written by another edgest process right now; wait for it to finish, "
               "or pass --out another folder$")
    with lock_held_elsewhere(out), pytest.raises(BadInput, match=refusal):  # as a bench running elsewhere holds it
        _bench(out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert _bench(out)["cells"][0]["cached"] is True  # let go: the next bench runs (from the cache)


def test_an_optimize_search_holds_its_folder_until_its_reports_are_written(tmp_path: Path) -> None:
    from edgest.optimize import Settings, optimize
    from edgest.outdir import claim_folder

    out = claim_folder(tmp_path / "opt", "bench")  # as a search running in another process made it
    with lock_held_elsewhere(out), pytest.raises(BadInput, match="is being written by another edgest process"):
        optimize("lmuformer_tiny", out, targets=["eager"], precisions=["fp32"], settings=Settings(samples=1))
    assert sorted(p.name for p in out.iterdir()) == [".edgest.json", ".edgest.lock"]  # refused before any cell
    doc = optimize("lmuformer_tiny", out, targets=["eager"], precisions=["fp32"], settings=Settings(samples=1),
                   rounds=1)  # its own bench inside takes the lock it already holds
    assert doc["winner"]["target"] == "eager" and (out / "optimize.json").is_file() and (out / "winner").is_dir()


def test_a_bench_interrupted_before_any_cell_leaves_no_folder_it_made(tmp_path: Path, monkeypatch) -> None:
    def interrupted(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("edgest.bench_jobs.run_cells", interrupted)
    with pytest.raises(KeyboardInterrupt):  # it left .edgest.json and cells/ while the CLI said "nothing was written"
        _bench(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    _bench(tmp_path / "old")
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "old").rglob("*"))
    monkeypatch.setattr("edgest.bench_jobs.run_cells", interrupted)
    with pytest.raises(KeyboardInterrupt):  # a folder it did not make is left as it was
        _bench(tmp_path / "old")
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "old").rglob("*")) == before


def _cell(status: str, error: str = "", **extra: object) -> dict:
    return {"model": "m", "target": "eager", "precision": "fp32", "passes": [], "status": status, "cached": False,
            "error": error, "latency": None, "accuracy": None, "seconds": 1.0, "budget_violations": [],
            "run_dir": "cells/m__eager__fp32", **extra}


def test_each_failed_cell_prints_its_reason_after_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgest.cli import _bench_outcome

    doc = {"cells": [_cell("passed"), _cell("error", "output folder 'x' holds files edgest did not write (mine.txt)\nmore"),
                     _cell("failed", accuracy={"status": "failed", "sqnr_db": 3.0}, precision="int8"),
                     _cell("not_run", "m ignores its input; pass --weights")]}
    assert _bench_outcome(doc, tmp_path / "b", as_json=True, ran_on=False) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["edgest: error: m ignores its input; pass --weights",
                   "edgest: cell m/eager/fp32: output folder 'x' holds files edgest did not write (mine.txt)",
                   f"edgest: cell m/eager/int8: accuracy check failed; see {tmp_path / 'b/cells/m__eager__fp32/report.md'}"]
