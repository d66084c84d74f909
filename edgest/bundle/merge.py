"""``edgest report merge``: fold device-report.json files into a run's or a bench's reports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgest.errors import BadInput
from edgest.records import CheckResult
from edgest.report.writers import read_json, write_reports


def _load_device(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read device report '{path}': {exc}") from None
    if data.get("kind") != "edgest-device-report":
        raise BadInput(f"'{path}' is not an edgest device report (run_on_device.py writes device-report.json)")
    return data


def merge_device_reports(folder: Path, device_reports: list[Path]) -> list[str]:
    """Merge into ``folder`` (a compile run or a bench folder); returns one line per merged report."""
    folder = Path(folder)
    devices = [_load_device(p) for p in device_reports]
    lines = []
    if (folder / "bench.json").is_file():
        from edgest.report.bench_writers import write_bench_reports

        doc = json.loads((folder / "bench.json").read_text())
        shas = {(c.get("artifact") or {}).get("sha256") for c in doc["cells"]}
        for d in devices:
            if d["artifact_sha256"] not in shas:
                raise BadInput(f"device report for {d['model']}/{d['target']} matches no artifact in '{folder}' (sha256 differs)")
            doc["device_results"] = [x for x in doc["device_results"]
                                     if not (x["artifact_sha256"] == d["artifact_sha256"] and x["device"]["name"] == d["device"]["name"])] + [d]
            lines.append(f"merged {d['model']}/{d['target']} from {d['device']['name']}")
        write_bench_reports(doc, folder)
        return lines
    if not (folder / "report.json").is_file():
        raise BadInput(f"'{folder}' holds neither report.json nor bench.json")
    report = read_json(folder / "report.json")
    checks = list(report.checks)
    for d in devices:
        if report.artifact is None or d["artifact_sha256"] != report.artifact.sha256:
            raise BadInput(f"device report from {d['device']['name']} is for another artifact (sha256 differs from '{folder}')")
        acc, lat = d["accuracy"], d["latency"]
        host = {**d["device"], "where": "device"}
        checks.append(CheckResult("accuracy", acc["status"], {k: v for k, v in acc.items() if k not in ("status", "limits", "reason")},
                                  acc["limits"], host, acc.get("reason", "")))
        checks.append(CheckResult("latency", "passed", dict(lat), {}, host))
        lines.append(f"merged {d['model']}/{d['target']} from {d['device']['name']}: p50 {lat['p50_ms']:.2f} ms")
    write_reports(replace(report, checks=tuple(checks)), folder)
    return lines
