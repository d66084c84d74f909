"""``compile --coverage`` and ``bench --coverage``: the compiled target's op coverage in report.md, report.json and bench.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from edgest.bench import run_bench
from edgest.checks.latency import LatencyConfig
from edgest.records import SCHEMA_VERSION
from edgest.report.writers import read_json

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

FAST = LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)


def _executorch() -> None:
    from edgest.plugins import get_registry

    registry = get_registry()
    if "executorch" not in registry.targets or registry.target("executorch").unavailable_reason():
        pytest.skip("the executorch target is not usable here")


def test_compile_coverage_adds_the_ops_left_out_of_the_delegate_to_both_reports(tmp_path, conv_cumsum_file):
    _executorch()
    proc = subprocess.run([sys.executable, "-m", "edgest", "compile", "--model", "net.py:ConvCumsum", "--input-shape",
                           "1x3x8x8", "--target", "executorch", "--out", "run", "--samples", "1", "--coverage", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "run" / "report.md").read_text()
    section = md[md.index("## Op coverage"):]
    assert "| cumsum | fallback | 1 | net.py:11 | not delegated: runs on ExecuTorch's portable kernels |" in section
    assert "conv2d" not in section.split("\n\n- ")[0]  # delegated ops are not rows
    assert "- executorch: 2 delegated, 1 fallback; XNNPACK partitioner on the edge program" in section
    report = read_json(tmp_path / "run" / "report.json")
    assert report.schema_version == SCHEMA_VERSION == "1.3"
    assert report.coverage["status"] == "known" and report.coverage["nodes"] == {"delegated": 2, "fallback": 1}
    assert report.coverage["not_native"] == ["cumsum: fallback"]
    assert "coverage" in report.stage_seconds


def test_a_report_from_before_coverage_reads_with_none(tmp_path):
    """Schema 1.2 reports (no ``coverage``) still read, with coverage empty, and render no section."""
    from edgest.records import InputSpec, ModelSpec, Report
    from edgest.report.run_markdown import render_markdown

    doc = Report("passed", ModelSpec("m", "family", InputSpec((1, 3)), 2), "eager").to_dict()
    doc.pop("coverage")
    doc["schema_version"] = "1.2"
    (tmp_path / "report.json").write_text(json.dumps(doc))
    report = read_json(tmp_path / "report.json")
    assert report.coverage == {}
    assert "## Op coverage" not in render_markdown(report)


def test_bench_coverage_lists_each_cells_ops_not_native(tmp_path):
    _executorch()
    out = tmp_path / "b"
    doc = run_bench(["squeezetime_tiny"], ["executorch"], ["fp32"], out, latency=FAST, samples=1, coverage=True)
    schema = json.loads((Path(__import__("edgest").__file__).parent / "report" / "schema" / "bench.schema.json").read_text())
    jsonschema.validate(json.loads((out / "bench.json").read_text()), schema)
    assert doc["settings"]["coverage"] is True
    cell = next(c for c in doc["cells"] if c["target"] == "executorch")
    assert cell["status"] == "passed", cell.get("error")
    assert cell["coverage"]["status"] == "known" and sum(cell["coverage"]["nodes"].values()) > 10
    md = (out / "report.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("- squeezetime_tiny / executorch / fp32: "))
    assert "delegated" in line
    cell_md = (out / cell["run_dir"] / "report.md").read_text()
    assert "## Op coverage" in cell_md and "- executorch: " in cell_md
    eager = next(c for c in doc["cells"] if c["target"] == "eager")  # the reference cell is asked too
    assert eager["coverage"]["not_native"] == []


def test_compile_coverage_on_a_target_without_coverage_says_not_known(tmp_path):
    """A target that keeps the contract's default ``coverage``: the report says so instead of failing the compile."""
    import torch

    import edgest
    from edgest.plugins import get_registry

    if "example-pt2" not in get_registry().targets:
        pytest.skip("the example-pt2 target is not installed (pip install -e examples/target)")
    report = edgest.compile(torch.nn.Linear(3, 2), "example-pt2", input_shape=(1, 3), out_dir=tmp_path / "run",
                            latency=None, samples=1, coverage=True)
    assert report.coverage["status"] == "not known"
    assert report.coverage["note"] == "target 'example-pt2' does not report op coverage"
    assert "- example-pt2: not known (target 'example-pt2' does not report op coverage)" in (
        tmp_path / "run" / "report.md").read_text()
