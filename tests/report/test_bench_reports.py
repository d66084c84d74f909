"""edgest bench: matrix, cache, budgets, schema-valid JSON, Markdown, and HTML checked in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from edgest.bench import Budget, over_budget, run_bench
from edgest.checks.latency import LatencyConfig

SCHEMA = json.loads((Path(__import__("edgest").__file__).parent / "report" / "schema" / "bench.schema.json").read_text())
FAST = LatencyConfig(warmup=1, min_runs=5, min_seconds=0.0)


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    run_bench(["squeezetime_tiny"], ["eager", "onnx"], ["fp32"], out, latency=FAST, samples=8)
    return out


def test_bench_writes_three_schema_valid_reports(bench_dir):
    doc = json.loads((bench_dir / "bench.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert [(c["target"], c["status"], c["cached"]) for c in doc["cells"]] == [("eager", "passed", False), ("onnx", "passed", False)]
    onnx = doc["cells"][1]
    assert onnx["speedup_vs_eager"] == pytest.approx(doc["cells"][0]["latency"]["p50_ms"] / onnx["latency"]["p50_ms"], rel=1e-2)
    md = (bench_dir / "report.md").read_text()
    assert "| squeezetime_tiny | onnx | fp32 | – | passed |" in md
    html = (bench_dir / "report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # self-contained


def test_second_run_hits_the_cache_for_every_cell(bench_dir, tmp_path):
    bench_dir = Path(shutil.copytree(bench_dir, tmp_path / "copy"))  # the shared folder stays as the fixture made it
    doc = run_bench(["squeezetime_tiny"], ["eager", "onnx"], ["fp32"], bench_dir, latency=FAST, samples=8)
    assert all(c["cached"] for c in doc["cells"])
    assert all(c["seconds"] < 1.0 for c in doc["cells"])
    changed = run_bench(["squeezetime_tiny"], ["onnx"], ["fp32"], bench_dir, latency=FAST, samples=4,
                        budget=Budget(max_latency_ms={"*": 1e-6}))
    assert not changed["cells"][0]["cached"]  # different settings: a different key, so it recompiles
    # no eager target in the matrix: bench adds the model's eager reference, so the speed-up is filled
    onnx, eager = changed["cells"]
    assert [(c["target"], c["in_matrix"], c["reference"]) for c in (onnx, eager)] == [("onnx", True, False), ("eager", False, True)]
    assert onnx["speedup_vs_eager"] == pytest.approx(eager["latency"]["p50_ms"] / onnx["latency"]["p50_ms"], rel=1e-2)
    assert eager["speedup_vs_eager"] == 1.0
    # the reference is not judged against the budget; the matrix cell is
    assert onnx["budget_violations"] and eager["budget_violations"] == []
    assert [line.split(":")[0] for line in over_budget(changed)] == ["squeezetime_tiny / onnx / fp32"]
    md = (bench_dir / "report.md").read_text()
    assert "| squeezetime_tiny | eager | fp32 | – | passed · reference |" in md
    assert "Weights: squeezetime_tiny: random init." in md and "latency budget: every target ≤ 1e-06 ms" in md
    jsonschema.validate(json.loads((bench_dir / "bench.json").read_text()), SCHEMA)
    again = run_bench(["squeezetime_tiny"], ["onnx"], ["fp32"], bench_dir, latency=FAST, samples=4)
    assert [c["cached"] for c in again["cells"]] == [True, True]  # the reference is cached like any cell


def test_schema_rejects_a_broken_document(bench_dir):
    doc = json.loads((bench_dir / "bench.json").read_text())
    doc["cells"][0]["status"] = "great"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_budget_names_the_cells_over_it():
    cell = {"target": "onnx", "accuracy": {"sqnr_db": 30.0, "top1_agreement": 0.9}, "latency": {"p50_ms": 12.0}}
    budget = Budget(min_sqnr_db=40, max_accuracy_drop=5, max_latency_ms={"onnx": 10, "*": 100})
    assert budget.violations(cell) == ["SQNR 30.0 dB < 40 dB", "top-1 drop 10.0 pt > 5 pt", "p50 12.00 ms > 10 ms"]
    assert Budget(max_latency_ms={"*": 100}).violations(cell) == []


def test_cli_exits_nonzero_and_names_the_cell_over_budget(bench_dir, tmp_path):
    bench_dir = Path(shutil.copytree(bench_dir, tmp_path / "copy"))
    proc = subprocess.run([sys.executable, "-m", "edgest", "bench", "--models", "squeezetime_tiny", "--targets", "eager",
                           "--out", str(bench_dir), "--max-latency-ms", "eager=0.000001"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "40"})
    assert proc.returncode == 1, proc.stderr
    assert "edgest: over budget: squeezetime_tiny / eager / fp32: p50" in proc.stderr
    assert "Traceback" not in proc.stderr
    # a pipe with COLUMNS=40: the table is printed at full width, no figure or header cut
    p50 = json.loads((bench_dir / "bench.json").read_text())["cells"][0]["latency"]["p50_ms"]
    row = next(line for line in proc.stdout.splitlines() if "squeezetime_tiny" in line)
    assert f" {p50:.2f} " in row and " passed " in row, proc.stdout
    assert f"edgest bench → {bench_dir}/report.md, report.html" in proc.stdout  # the title too: a path is never split
    assert all(f" {h} " in proc.stdout for h in ("model", "target", "precision", "status", "p50 ms", "SQNR dB", "seconds"))


def test_html_renders_in_headless_chromium(bench_dir, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium not installed (apt-get install chromium); .ci/run installs it")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    url = (bench_dir / "report.html").resolve().as_uri()
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-500:]
    assert dom.stdout.count('class="pt"') == 2 and dom.stdout.count('class="bar"') == 2
    assert dom.stdout.count("<tr>") == 3  # header + two cells, as parsed by the browser
    png = tmp_path / "report.png"
    shot = subprocess.run([chromium, *flags, "--window-size=1200,900", f"--screenshot={png}", url], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and png.stat().st_size > 10_000
