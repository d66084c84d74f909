"""edgest optimize on the tiny SqueezeTime model (eager and onnx, fp32 and int8): winner, frontier, cache, budgets.

One search compiles the three cells (eager fp32, onnx fp32 and int8) once for the module, with a short
latency protocol; each test works on a copy of its folder, through the API or the CLI in this process (the
CLI given the same protocol, so the cache makes both instant).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgest.checks.latency import LatencyConfig
from edgest.optimize import optimize
from edgest.optimize.search import Settings

MODEL = "squeezetime_tiny"
TARGETS = ("eager", "onnx")
PRECISIONS = ("fp32", "int8")
FAST = Settings(latency=LatencyConfig(warmup=1, min_runs=5, min_seconds=0.0))


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("optimize") / "out"
    return out, optimize(MODEL, out, targets=TARGETS, precisions=PRECISIONS, settings=FAST, rounds=1)


@pytest.fixture
def copy(searched, tmp_path) -> Path:
    return Path(shutil.copytree(searched[0], tmp_path / "out", symlinks=True))


def cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """``edgest optimize`` in this process, its cells timed with the fixture's protocol (the same cache keys)."""
    from edgest.cli import main
    from edgest.optimize import search

    monkeypatch.setattr(search, "Settings", lambda **kw: Settings(**{**kw, "latency": FAST.latency}))
    with pytest.raises(SystemExit) as exc:
        main(["optimize", "--model", MODEL, "--targets", ",".join(TARGETS), "--precisions", ",".join(PRECISIONS),
              "--rounds", "1", *args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_winner_folder_is_the_fastest_qualifying_cell(searched):
    out, doc = searched
    qualifying = [r for r in doc["cells"] if r["within_budget"]]
    assert qualifying and all(r["accuracy_status"] == "passed" and r["status"] == "passed" for r in qualifying)
    finalists = [r for r in doc["cells"] if r["finalist"]]
    (win,) = [r for r in doc["cells"] if r["winner"]]
    assert win["retime_p50_ms"] == min(r["retime_p50_ms"] for r in finalists)
    assert win["retime_ratio"] == 1.0 and all(r["retime_ratio"] >= 1.0 for r in finalists)
    assert doc["winner"]["target"] == win["target"] and doc["winner"]["precision"] == win["precision"]
    report = json.loads((out / "winner" / "report.json").read_text())
    cell = json.loads((out / win["run_dir"] / "report.json").read_text())
    assert (report["target"], report["precision"], report["status"]) == (win["target"], win["precision"], "passed")
    assert report["artifact"]["sha256"] == cell["artifact"]["sha256"] and report["checks"] == cell["checks"]
    assert Path(report["run_dir"]) == (out / "winner").absolute()
    assert not (out / "winner" / "cell.key").exists()  # an ordinary run folder, not a bench cell
    from edgest.report.writers import read_run

    assert read_run(out / "winner").artifact.sha256 == cell["artifact"]["sha256"]  # whole: report and artifact agree


def test_frontier_json_lists_every_cell_with_host_and_ratios(searched):
    out, _ = searched
    written = json.loads((out / "optimize.json").read_text())
    assert written["kind"] == "edgest-optimize" and written["schema_version"]
    assert sorted((r["target"], r["precision"]) for r in written["cells"]) == [("eager", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]
    assert written["host"]["isa"] and written["isa_summary"]
    assert set(written["retime"]["ratios"]) == {f"{r['target']} {r['precision']}" for r in written["cells"] if r["finalist"]}
    assert any(r["pareto"] for r in written["cells"])
    assert written["settings"]["skipped"] == ["eager int8: not supported (it supports fp32)"]
    bench = json.loads((out / "bench.json").read_text())  # the groups' benches merged into one document
    assert sorted((c["target"], c["precision"]) for c in bench["cells"]) == [("eager", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]
    md = (out / "optimize.md").read_text()
    assert f"| {written['winner']['target']} (winner) | {written['winner']['precision']} |" in md
    html = (out / "optimize.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # opens offline


def test_second_run_uses_the_cache(copy, capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "--out", str(copy), "--json", "--quiet")
    assert code == 0, err
    doc = json.loads(out)
    assert [r["cached"] for r in doc["cells"]] == [True, True, True]
    assert all(c["cached"] for c in json.loads((copy / "bench.json").read_text())["cells"])
    assert (copy / "winner" / "report.json").is_file()


def test_pass_lists_searched_are_every_combination_of_the_tried_passes_after_the_applied_ones():
    assert Settings().pass_sets == [()]
    assert Settings(try_passes=("a",)).pass_sets == [(), ("a",)]
    assert Settings(passes=("p",), try_passes=("a", "b")).pass_sets == [("p",), ("p", "a"), ("p", "b"), ("p", "a", "b")]


def test_a_tried_pass_is_an_axis_of_the_search(copy, capsys, monkeypatch):
    """The cells without the pass come from the cache; those with it are new cells beside them, judged alike."""
    code, out, err = cli(capsys, monkeypatch, "--out", str(copy), "--try-pass", "fuse-bn", "--targets", "onnx",
                         "--precisions", "fp32", "--json", "--quiet")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["settings"]["try_passes"] == ["fuse-bn"] and doc["schema_version"] == "1.2"
    rows = {(r["target"], r["precision"], tuple(r["passes"])): r for r in doc["cells"]}
    assert set(rows) == {("onnx", "fp32", ()), ("onnx", "fp32", ("fuse-bn",))}
    assert rows[("onnx", "fp32", ())]["cached"] and not rows[("onnx", "fp32", ("fuse-bn",))]["cached"]
    assert rows[("onnx", "fp32", ("fuse-bn",))]["status"] == "passed"
    assert doc["winner"]["passes"] in ([], ["fuse-bn"])
    report = json.loads((copy / "winner" / "report.json").read_text())
    assert [p["name"] for p in report["passes"]] == doc["winner"]["passes"]
    assert len(doc["retime"]["ratios"]) == sum(r["finalist"] for r in doc["cells"])  # one label per finalist


def test_thread_counts_are_an_axis_of_the_re_time(copy, capsys, monkeypatch):
    """--threads 1,2: no cell compiles again (they were benched at 1); every qualifying cell is timed in turns at 1
    and at 2, and the winner is the fastest cell at its fastest count."""
    code, out, err = cli(capsys, monkeypatch, "--out", str(copy), "--threads", "1,2", "--json", "--quiet")
    assert code == 0, err
    doc = json.loads(out)
    assert all(r["cached"] for r in doc["cells"])
    assert doc["settings"]["thread_counts"] == [1, 2] and doc["settings"]["threads"] == 1
    qualifying = [r for r in doc["cells"] if r["within_budget"]]
    assert qualifying and all(r["finalist"] and set(r["retime_by_threads"]) == {"1", "2"} for r in qualifying)
    for r in qualifying:
        assert r["retime_p50_ms"] == min(r["retime_by_threads"].values())
        assert r["retime_by_threads"][str(r["retime_threads"])] == r["retime_p50_ms"]
    (win,) = [r for r in doc["cells"] if r["winner"]]
    assert win["retime_p50_ms"] == min(p for r in qualifying for p in r["retime_by_threads"].values())
    assert doc["winner"]["threads"] == win["retime_threads"]
    by = doc["retime"]["winners_by_threads"]
    assert set(by) == {"1", "2"}
    for t, label in by.items():
        fastest = min(qualifying, key=lambda r: r["retime_by_threads"][t])
        assert label == f"{fastest['target']} {fastest['precision']}"
    md = (copy / "optimize.md").read_text()
    assert "| in turns p50 ms @1 thr | in turns p50 ms @2 thr |" in md
    assert f"Winner: {win['target']} {win['precision']} at {win['retime_threads']} thread(s)" in md
    assert "Fastest at each count: 1 thread(s): " in md


def test_a_finalists_figures_are_its_fastest_counts():
    from edgest.optimize.retiming import _fill

    row = {"p50_ms": 10.0}
    _fill(row, {1: {"p50_ms": 9.0, "min_p50_ms": 8.5, "max_p50_ms": 9.5},
                2: {"p50_ms": 6.0, "min_p50_ms": 5.5, "max_p50_ms": 7.0}}, bench_threads=1)
    assert row["retime_threads"] == 2 and row["retime_p50_ms"] == 6.0
    assert (row["retime_min_p50_ms"], row["retime_max_p50_ms"]) == (5.5, 7.0)
    assert row["retime_by_threads"] == {"1": 9.0, "2": 6.0}
    assert row["retime_vs_bench"] == 0.9  # against the bench's own count, not the fastest


def test_too_strict_min_sqnr_exits_non_zero_with_the_fix(copy, capsys, monkeypatch):
    code, _, err = cli(capsys, monkeypatch, "--out", str(copy), "--min-sqnr", "500", "--quiet")
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("edgest: error:")]
    assert len(lines) == 1 and "--min-sqnr 500" in lines[0] and "loosen --min-sqnr" in lines[0], err
    assert "Traceback" not in err
    doc = json.loads((copy / "optimize.json").read_text())  # the frontier is written all the same
    assert doc["winner"] is None and not any(r["within_budget"] for r in doc["cells"])
    assert not (copy / "winner").exists()  # the earlier search's winner is not this one's


@pytest.mark.parametrize(("args", "words"), [
    (("--min-sqnr", "20", "--max-accuracy-drop", "1"), ("give one of them",)),
    (("--targets", "onnx,nosuch"), ("unknown target 'nosuch'", "onnx")),
    (("--precisions", "fp8"), ("unknown precision 'fp8'",)),
    (("--max-latency-ms", "nosuch=5"), ("not in the bench",)),
    (("--targets", "onnx", "--precisions", "bf16"), ("no available target supports bf16", "onnx bf16: not supported")),
    (("--weights", "no-such.pt"), ("weights file 'no-such.pt' does not exist",)),
    (("--try-pass", "nosuch"), ("unknown pass 'nosuch'",)),
    (("--pass", "fuse-bn", "--try-pass", "fuse-bn"), ("both applied (--pass) and searched (--try-pass)",)),
    (("--try-pass", "fuse-bn:verify=maybe"), ("pass 'fuse-bn' option verify must be true or false, not 'maybe'",)),
    (("--pass", "fuse-bn:nosuch=1"), ("unknown pass 'fuse-bn' option 'nosuch'",)),
    (("--threads", "0"), ("'0' is not a thread count", "1,2")),
    (("--threads", "1,x"), ("'1,x' is not a thread count", "1,2")),
    (("--threads", "2,2"), ("names a thread count twice",)),
])
def test_bad_input_is_one_line(capsys, tmp_path, args, words):
    from edgest.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["optimize", "--model", MODEL, "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert err.count("edgest: error:") == 1 and all(w in err for w in words), err
    assert not (tmp_path / "out").exists()


def test_an_out_path_that_is_a_file_is_refused(capsys, monkeypatch, tmp_path):
    (tmp_path / "f").write_text("mine")
    code, _, err = cli(capsys, monkeypatch, "--out", str(tmp_path / "f"))
    assert code == 2 and "is a file" in err and (tmp_path / "f").read_text() == "mine"
