"""Files edgest reads back are checked before use: a bench cache entry is reused only when its report is
sound and its artifact is the one the report describes (else the cell is compiled again, never reported
"cached"), and ``edgest bundle`` refuses a run folder whose report or artifact does not hold up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgest.bench import run_bench
from edgest.bundle import build_bundle
from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput
from edgest.outdir import MARKER
from edgest.fsio import sha256_of as sha256_file
from edgest.report.writers import read_json

FAST = LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
BENCH = (["squeezetime_tiny"], ["eager"], ["fp32"])


@pytest.fixture(scope="module")
def eager_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "bench"
    doc = run_bench(*BENCH, out, latency=FAST, samples=1)
    assert doc["cells"][0]["status"] == "passed" and not doc["cells"][0]["cached"]
    return out


def _cell(bench: Path) -> Path:
    return bench / json.loads((bench / "bench.json").read_text())["cells"][0]["run_dir"]


def _artifact(cell: Path) -> Path:
    return cell / read_json(cell / "report.json").artifact.path


DAMAGE = {
    "intact": lambda cell: None,
    "artifact deleted": lambda cell: _artifact(cell).unlink(),
    "artifact changed": lambda cell: _artifact(cell).write_bytes(_artifact(cell).read_bytes()[:-10] + b"0123456789"),
    "report truncated": lambda cell: (cell / "report.json").write_text((cell / "report.json").read_text()[:300]),
    "report of another kind": lambda cell: (cell / "report.json").write_text('{"schema_version": "1.1", "cells": []}'),
    "marker removed": lambda cell: (cell / MARKER).unlink(),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_cache_entry_is_reused_only_when_it_holds_up(eager_bench, tmp_path, damage):
    bench = Path(shutil.copytree(eager_bench, tmp_path / "bench"))
    cell = _cell(bench)
    DAMAGE[damage](cell)
    doc = run_bench(*BENCH, bench, latency=FAST, samples=1)
    rec = doc["cells"][0]
    if damage == "intact":
        assert rec["cached"] and rec["status"] == "passed"
        return
    if damage == "marker removed":  # a cell of this (marked) bench holding its cell.key: never reused, recompiled
        assert not rec["cached"] and rec["status"] == "passed", rec.get("error")  # (the outside round: was an error)
        assert (cell / MARKER).is_file()
        return
    assert not rec["cached"] and rec["status"] == "passed", rec.get("error")
    assert sha256_file(_artifact(cell)) == rec["artifact"]["sha256"] == read_json(cell / "report.json").artifact.sha256
    assert "(cached)" not in (bench / "report.md").read_text()


@pytest.fixture
def run(eager_bench: Path, tmp_path: Path) -> Path:
    """A copy of the bench's one cell: an ordinary run folder of the eager target."""
    run = Path(shutil.copytree(_cell(eager_bench), tmp_path / "run"))
    (run / "cell.key").unlink()
    return run


@pytest.mark.parametrize("damage", ["artifact deleted", "artifact changed", "report truncated", "report of another kind",
                                    "artifact outside the run"])
def test_bundle_refuses_a_run_that_does_not_hold_up(run, tmp_path, damage):
    if damage == "artifact outside the run":
        (tmp_path / "secret.txt").write_text("not for a bundle")
        data = json.loads((run / "report.json").read_text())
        data["artifact"]["path"] = "../secret.txt"
        (run / "report.json").write_text(json.dumps(data))
    else:
        DAMAGE[damage](run)
    why = {"artifact deleted": "lacks its artifact", "artifact changed": "changed since it was compiled",
           "report truncated": "cannot read report", "report of another kind": "is damaged",
           "artifact outside the run": "which is not a file in the run folder"}[damage]
    with pytest.raises(BadInput, match=why):
        build_bundle(run, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
