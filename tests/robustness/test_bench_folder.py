"""A bench folder that was tampered with: a cell that lost its marker is recompiled; a file where the cells go is
one line (the outside round: "shows an error instead of recompiling", "File exists")."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgest.bench import run_bench
from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput

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
    assert doc["cells"][0]["status"] == "error" and "edgest did not create it" in doc["cells"][0]["error"]
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
