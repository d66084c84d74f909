"""A self-contained HTML report (inline CSS and SVG; opens offline) for a bench document.

The page says what its figures mean: which weights each model ran with, how latency was
measured, what a speed-up is relative to; every cell's reason stands in the table itself, and
merged device figures are columns beside the host's. The charts are in :mod:`edgest.report.charts`.
"""

from __future__ import annotations

from typing import Any

from edgest.report.bench_cells import (agreement, device_figures, device_lines, device_names, num, ordered, protocol,
                                       reason, speedup, status_label, streaming_rows, weights_by_model)
from edgest.report.charts import latency_bars, scatter_latency_accuracy, unplotted
from edgest.report.svg_marks import SQNR_CAP, esc

CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}table{border-collapse:collapse;margin:12px 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}th{background:#f3f3f3}
td.text,th.text{text-align:left}td.reason{text-align:left;max-width:420px;font-size:13px;color:#555}
.passed{color:#1a7f37}.failed,.error,.run_failed{color:#c62828}.incomplete,.not_run{color:#b26a00}
figure{display:inline-block;margin:8px 24px 8px 0;vertical-align:top}figcaption{font-weight:600;margin-bottom:4px}
svg text{font:11px system-ui,sans-serif;fill:#333}ul.notes li{margin:3px 0}.muted{color:#666}"""


def _td(value: Any, cls: str = "") -> str:
    return f'<td class="{cls}">{esc(value)}</td>' if cls else f"<td>{esc(value)}</td>"


def _cells_table(doc: dict[str, Any]) -> str:
    """Every cell: identity, status, its reason inline, host figures with device columns beside them, speed-up."""
    devices = device_names(doc)
    task = any("task_top1" in (c.get("accuracy") or {}) for c in doc["cells"])
    head = ["model", "target", "precision", "status", "reason", "size MB", "SQNR dB", *(f"{d} SQNR dB" for d in devices),
            "top-1 agree", "host p50 ms", "host p90 ms", *(f"{d} p50 ms" for d in devices), "speed-up vs eager"]
    head += ["task top-1", "task drop pt"] if task else []
    rows = []
    for c in ordered(doc["cells"]):
        acc, lat, art = c.get("accuracy") or {}, c.get("latency") or {}, c.get("artifact") or {}
        dev = device_figures(doc, c)
        tds = [_td(c["model"], "text"), _td(c["target"], "text"), _td(c["precision"], "text"),
               _td(status_label(c), f"text {c['status']}"), _td(reason(c) or "–", "reason")]
        nums = [num(art.get("size_bytes", 0) / 1e6 if art else None, ".2f"), num(acc.get("sqnr_db"), ".1f"),
                *(num(dev.get(d, {}).get("sqnr_db"), ".1f") for d in devices), agreement(acc),
                num(lat.get("p50_ms"), ".2f"), num(lat.get("p90_ms"), ".2f"),
                *(num(dev.get(d, {}).get("p50_ms"), ".2f") for d in devices)]
        tds += [_td(v) for v in nums] + [_td(speedup(c), "speedup")]
        if task:
            tds += [_td(num(acc["task_top1"] * 100, ".1f") + "%" if "task_top1" in acc else "–"),
                    _td(num(acc.get("task_top1_drop_pts"), ".1f"))]
        rows.append(f"<tr>{''.join(tds)}</tr>")
    ths = "".join(f'<th class="text">{esc(h)}</th>' if i < 5 else f"<th>{esc(h)}</th>" for i, h in enumerate(head))
    return (f'<table id="cells"><thead><tr>{ths}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _streaming_table(doc: dict[str, Any]) -> str:
    """``--streaming`` cells: per-step latency and real-time factor ('' when none streamed)."""
    from edgest.report.bench_cells import STREAMING_NOTE, streaming_head

    rows = streaming_rows(doc)
    if not rows:
        return ""
    ths = "".join(f'<th class="text">{esc(h)}</th>' if i < 4 else f"<th>{esc(h)}</th>" for i, h in enumerate(streaming_head(doc)))
    trs = "".join("<tr>" + "".join(_td(v, "text" if i < 4 else "") for i, v in enumerate(r)) + "</tr>" for r in rows)
    return (f'<h2>Streaming (step module, state carried)</h2><table id="streaming"><thead><tr>{ths}</tr></thead>'
            f'<tbody>{trs}</tbody></table><p class="muted">{esc(STREAMING_NOTE)}</p>')


def _notes(doc: dict[str, Any]) -> str:
    """Weights per model, the latency protocol, the budget and merged devices, as a list."""
    items = [f"Weights: {'; '.join(f'{m}: {w}' for m, w in weights_by_model(doc).items())}.", protocol(doc)]
    items += device_lines(doc)
    return '<ul class="notes">' + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def _left_out(cells: list[dict[str, Any]]) -> str:
    missing = unplotted(cells)
    if not missing:
        return ""
    names = "; ".join(f"{c['model']} / {c['target']} / {c['precision']} ({c['status']})" for c in missing)
    return f'<p class="muted">Not in the latency/accuracy chart (no latency or accuracy figure): {esc(names)}. Reasons in the table.</p>'


def _summary(doc: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    """One line: how many cells in each state, the host, threads, when, schema."""
    host, settings = doc.get("host") or {}, doc.get("settings") or {}
    statuses = list(dict.fromkeys(["passed", "incomplete", "failed", "error", "not_run", *(c["status"] for c in cells)]))
    counts = ", ".join(f"{sum(c['status'] == s for c in cells)} {s.replace('_', ' ')}" for s in statuses
                       if any(c["status"] == s for c in cells))
    return (f"<p>{len(cells)} cells ({counts}) · host {esc(host.get('cpu'))} ({esc(host.get('cpu_count'))} cores) · "
            f"{esc(settings.get('threads', 1))} thread(s) · {esc(doc.get('created', ''))} · "
            f"schema {esc(doc.get('schema_version', ''))}</p>")


def render_html(doc: dict[str, Any]) -> str:
    """The whole page: summary and notes, the two charts, the table of cells."""
    cells = ordered(doc["cells"])  # as the table lists them: by model, the eager reference first
    per_cell_device = {i: {n: f["p50_ms"] for n, f in device_figures(doc, c).items() if f["p50_ms"] is not None}
                       for i, c in enumerate(cells)}
    where = " (host and device)" if device_names(doc) else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>edgest bench</title><style>{CSS}</style></head>
<body><h1>edgest bench</h1>
{_summary(doc, cells)}
{_notes(doc)}
<figure><figcaption>Latency vs accuracy (SQNR drawn at most {SQNR_CAP:g} dB: exact matches sit on the top line)</figcaption>
{scatter_latency_accuracy(cells)}</figure>
<figure><figcaption>p50 latency per cell{where}</figcaption>{latency_bars(cells, per_cell_device)}</figure>
{_left_out(cells)}
<h2>All cells</h2>{_cells_table(doc)}
{_streaming_table(doc)}
</body></html>
"""
