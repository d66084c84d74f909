"""Bench records and run reports with what legitimately differs between runs taken out: timings and where they ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TIMING_KEYS = ("seconds", "compile_seconds", "ran_on", "speedup_vs_eager")


def record(rec: dict[str, Any]) -> dict[str, Any]:
    """A cell record without timings: latency keeps its status only."""
    out = {k: v for k, v in rec.items() if k not in TIMING_KEYS}
    out["latency"] = (rec.get("latency") or {}).get("status")
    if out.get("artifact"):
        out["artifact"] = {k: v for k, v in out["artifact"].items() if k not in TIMING_KEYS}
    out["pass_records"] = [{k: v for k, v in p.items() if k != "seconds"} for p in rec.get("pass_records", [])]
    return out


def run_report(run_dir: Path) -> dict[str, Any]:
    """A cell's report.json: status, artifact (no timings), accuracy metrics, the check statuses."""
    doc = json.loads((run_dir / "report.json").read_text())
    art = {k: v for k, v in (doc.get("artifact") or {}).items() if k not in TIMING_KEYS}
    checks = {c["kind"]: (c["status"], c["metrics"] if c["kind"] == "accuracy" else None) for c in doc["checks"]}
    return {"status": doc["status"], "artifact": art, "checks": checks, "run_dir": doc["run_dir"].endswith(run_dir.name)}


def assert_same_bench(out: Path, doc: dict[str, Any], local_out: Path, local_doc: dict[str, Any]) -> None:
    """``doc`` (written to ``out``) has the local bench's cells, settings, cache keys and run reports."""
    assert [record(c) for c in doc["cells"]] == [record(c) for c in local_doc["cells"]]
    assert doc["settings"] == local_doc["settings"]
    for cell in local_doc["cells"]:
        assert run_report(out / cell["run_dir"]) == run_report(local_out / cell["run_dir"])
        assert (out / cell["run_dir"] / "cell.key").read_text() == cell["key"]
    assert json.loads((out / "bench.json").read_text())["cells"][0]["key"] == local_doc["cells"][0]["key"]
