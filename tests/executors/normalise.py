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
