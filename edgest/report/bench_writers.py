"""Write a bench document as ``bench.json``, ``report.md`` and a self-contained ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgest.fsio import atomic_write_files, dumps_json, finite_json
from edgest.report.bench_cells import (agreement, coverage_lines, device_figures, device_lines, device_names, num, ordered, protocol,
                                       speedup, status_label, streaming_lines, weights_by_model)
from edgest.report.html import render_html

__all__ = ["render_bench_markdown", "write_bench_reports"]


def _row(doc: dict[str, Any], c: dict[str, Any], devices: list[str], task: bool) -> list[str]:
    acc, lat, art = c.get("accuracy") or {}, c.get("latency") or {}, c.get("artifact") or {}
    dev = device_figures(doc, c)
    row = [c["model"], c["target"], c["precision"], "+".join(c["passes"]) or "–",
           status_label(c) + (" ⚠ over budget" if c.get("budget_violations") else ""),
           num(art.get("size_bytes", 0) / 1e6 if art else None, ".2f"), num(acc.get("sqnr_db"), ".1f")]
    row += [num(dev.get(d, {}).get("sqnr_db"), ".1f") for d in devices]
    row += [agreement(acc) if acc else "–", num(lat.get("p50_ms"), ".2f"), num(lat.get("p90_ms"), ".2f")]
    row += [num(dev.get(d, {}).get("p50_ms"), ".2f") for d in devices]
    row.append(speedup(c))
    if task:
        row += [num(acc.get("task_top1", 0) * 100 if "task_top1" in acc else None, ".1f") + ("%" if "task_top1" in acc else ""),
                num(acc.get("task_top1_drop_pts"), ".1f")]
    return row


def render_bench_markdown(doc: dict[str, Any]) -> str:
    """An Ultralytics-style table, one row per cell, device figures as columns beside the host's; then the
    weights, the latency protocol, and every cell's reason."""
    devices = device_names(doc)
    head = ["model", "target", "precision", "passes", "status", "size MB", "SQNR dB", *(f"{d} SQNR dB" for d in devices),
            "top-1 agree", "host p50 ms" if devices else "p50 ms", "host p90 ms" if devices else "p90 ms",
            *(f"{d} p50 ms" for d in devices), "speed-up vs eager"]
    task = any("task_top1" in (c.get("accuracy") or {}) for c in doc["cells"])  # cells compiled with --weights
    head += ["task top-1", "task drop pt"] if task else []
    host = doc.get("host") or {}
    lines = [f"# edgest bench ({doc.get('created', '')})", "",
             f"Host: {host.get('cpu')} ({host.get('cpu_count')} cores), {(doc.get('settings') or {}).get('threads', 1)} thread(s)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_row(doc, c, devices, task)) + " |" for c in ordered(doc["cells"])]
    weights = weights_by_model(doc)
    lines += ["", "Weights: " + "; ".join(f"{m}: {w}" for m, w in weights.items()) + ".", "", protocol(doc)]
    lines += streaming_lines(doc)
    lines += coverage_lines(doc)
    lines += ["", *(f"- {line}" for line in device_lines(doc))] if devices else []
    errors = [c for c in doc["cells"] if c.get("error")]
    if errors:
        lines += ["", "## Errors and reasons", ""] + [f"- {c['model']} / {c['target']} / {c['precision']}: {c['error']}" for c in errors]
    over = [c for c in doc["cells"] if c.get("budget_violations")]
    if over:
        lines += ["", "## Over budget", ""] + [f"- {c['model']} / {c['target']} / {c['precision']}: {'; '.join(c['budget_violations'])}" for c in over]
    return "\n".join(lines) + "\n"


def write_bench_reports(doc: dict[str, Any], out_dir: Path) -> None:
    """Write the three reports atomically (all or none); non-finite figures are written as null."""
    doc = finite_json(doc)  # what bench.json holds is also what the Markdown and HTML show
    out_dir = Path(out_dir)
    atomic_write_files({out_dir / "bench.json": dumps_json(doc), out_dir / "report.md": render_bench_markdown(doc),
                        out_dir / "report.html": render_html(doc)})
