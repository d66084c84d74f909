"""Write a bench document as ``bench.json``, ``report.md`` and a self-contained ``report.html``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgest.report.html import render_html


def _num(v: Any, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) else "–"


def device_p50(doc: dict[str, Any], cell: dict[str, Any]) -> dict[str, float]:
    """Device name → p50 ms merged for this cell (by artifact sha256, else by model/target/precision)."""
    out = {}
    sha = (cell.get("artifact") or {}).get("sha256")
    for d in doc.get("device_results", []):
        same = (sha and d.get("artifact_sha256") == sha) or (
            d.get("model") == cell["model"] and d.get("target") == cell["target"] and d.get("precision") == cell["precision"])
        if same and (d.get("latency") or {}).get("p50_ms") is not None:
            out[d["device"].get("name", "device")] = d["latency"]["p50_ms"]
    return out


def render_bench_markdown(doc: dict[str, Any]) -> str:
    """An Ultralytics-style table: one row per cell, plus device columns once results are merged."""
    devices = sorted({d["device"].get("name", "device") for d in doc.get("device_results", [])})
    head = ["model", "target", "precision", "passes", "status", "size MB", "SQNR dB", "top-1 agree", "p50 ms", "p90 ms", "speed-up vs eager"]
    head += [f"{d} p50 ms" for d in devices]
    task = any("task_top1" in (c.get("accuracy") or {}) for c in doc["cells"])  # cells compiled with --weights
    head += ["task top-1", "task drop pt"] if task else []
    lines = [f"# edgest bench ({doc['created']})", "",
             f"Host: {doc['host'].get('cpu')} ({doc['host'].get('cpu_count')} cores), {doc['settings']['threads']} thread(s)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in doc["cells"]:
        acc, lat, art = c.get("accuracy") or {}, c.get("latency") or {}, c.get("artifact") or {}
        status = c["status"] + (" (cached)" if c.get("cached") else "") + (" ⚠ over budget" if c.get("budget_violations") else "")
        row = [c["model"], c["target"], c["precision"], "+".join(c["passes"]) or "–", status,
               _num(art.get("size_bytes", 0) / 1e6 if art else None, ".2f"), _num(acc.get("sqnr_db"), ".1f"),
               _num(acc.get("top1_agreement") * 100 if acc.get("top1_agreement") is not None else None, ".0f") + ("%" if acc else ""),
               _num(lat.get("p50_ms"), ".2f"), _num(lat.get("p90_ms"), ".2f"), _num(c.get("speedup_vs_eager"), ".2f") + ("×" if c.get("speedup_vs_eager") else "")]
        dev = device_p50(doc, c)
        row += [_num(dev.get(d), ".2f") for d in devices]
        if task:
            row += [_num(acc.get("task_top1", 0) * 100 if "task_top1" in acc else None, ".1f") + ("%" if "task_top1" in acc else ""),
                    _num(acc.get("task_top1_drop_pts"), ".1f")]
        lines.append("| " + " | ".join(row) + " |")
    errors = [c for c in doc["cells"] if c.get("error")]
    if errors:
        lines += ["", "## Errors and reasons", ""] + [f"- {c['model']} / {c['target']} / {c['precision']}: {c['error']}" for c in errors]
    over = [c for c in doc["cells"] if c.get("budget_violations")]
    if over:
        lines += ["", "## Over budget", ""] + [f"- {c['model']} / {c['target']} / {c['precision']}: {'; '.join(c['budget_violations'])}" for c in over]
    return "\n".join(lines) + "\n"


def write_bench_reports(doc: dict[str, Any], out_dir: Path) -> None:
    """Write the three reports, each through a temporary file so a reader never sees half of one."""
    for name, text in (("bench.json", json.dumps(doc, indent=2, allow_nan=False) + "\n"),
                       ("report.md", render_bench_markdown(doc)), ("report.html", render_html(doc))):
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out_dir / name)
