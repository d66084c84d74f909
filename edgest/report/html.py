"""A self-contained HTML report (inline CSS and SVG; opens offline) for a bench document.

Plots are drawn as SVG by hand: three simple charts do not justify a plotting dependency in
the core, and SVG keeps the page a single small file.
"""

from __future__ import annotations

import html
import math
from typing import Any

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:12px 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child,td:nth-child(2){text-align:left}
.passed{color:#1a7f37}.failed,.error,.run_failed{color:#c62828}.incomplete{color:#b26a00}figure{display:inline-block;margin:8px 16px 8px 0}
figcaption{font-weight:600;margin-bottom:4px}svg text{font:11px system-ui,sans-serif}"""


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _colours(names: list[str]) -> dict[str, str]:
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(sorted(set(names)))}


def scatter_latency_accuracy(cells: list[dict[str, Any]], width: int = 520, height: int = 340) -> str:
    """p50 latency (log x) vs SQNR (y), one colour per target."""
    pts = [(c["latency"]["p50_ms"], min(c["accuracy"]["sqnr_db"], 120.0), c) for c in cells
           if (c.get("latency") or {}).get("p50_ms") and (c.get("accuracy") or {}).get("sqnr_db") is not None]
    if not pts:
        return "<p>No cell has both latency and accuracy figures.</p>"
    colours = _colours([c["target"] for *_, c in pts])
    xs = [math.log10(p[0]) for p in pts]
    x0, x1 = min(xs) - 0.1, max(xs) + 0.1
    y0, y1 = 0.0, max(p[1] for p in pts) * 1.1
    L, R, T, B = 50, 130, 15, 40

    def sx(v: float) -> float:
        return L + (math.log10(v) - x0) / (x1 - x0) * (width - L - R)

    def sy(v: float) -> float:
        return height - B - (v - y0) / (y1 - y0) * (height - T - B)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="latency vs accuracy">',
             f'<line x1="{L}" y1="{height - B}" x2="{width - R}" y2="{height - B}" stroke="#444"/><line x1="{L}" y1="{T}" x2="{L}" y2="{height - B}" stroke="#444"/>',
             f'<text x="{(width - R + L) / 2}" y="{height - 8}" text-anchor="middle">p50 latency (ms, log scale)</text>',
             f'<text x="12" y="{(height - B + T) / 2}" transform="rotate(-90 12 {(height - B + T) / 2})" text-anchor="middle">SQNR vs eager (dB)</text>']
    for e in range(math.floor(x0), math.ceil(x1) + 1):
        for m in (1, 2, 5):
            v = m * 10**e
            if x0 <= math.log10(v) <= x1:
                parts.append(f'<text x="{sx(v):.1f}" y="{height - B + 14}" text-anchor="middle">{v:g}</text>')
    for v in range(0, int(y1) + 1, 20):
        parts.append(f'<text x="{L - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{v}</text>')
    for lat, sq, c in pts:
        title = _esc(f"{c['model']} / {c['target']} / {c['precision']}: {lat:.2f} ms, {c['accuracy']['sqnr_db']:.1f} dB")
        parts.append(f'<circle class="pt" cx="{sx(lat):.1f}" cy="{sy(sq):.1f}" r="5" fill="{colours[c["target"]]}"><title>{title}</title></circle>')
    for i, (name, col) in enumerate(colours.items()):
        parts.append(f'<rect x="{width - R + 12}" y="{T + i * 18}" width="10" height="10" fill="{col}"/><text x="{width - R + 28}" y="{T + i * 18 + 9}">{_esc(name)}</text>')
    return "".join(parts) + "</svg>"


def latency_bars(cells: list[dict[str, Any]], device: dict[int, dict[str, float]] | None = None, width: int = 620) -> str:
    """Horizontal p50 bars per cell, grouped by model; device bars under the host bar when merged."""
    rows: list[tuple[str, float, str]] = []
    for i, c in enumerate(cells):
        p50 = (c.get("latency") or {}).get("p50_ms")
        if p50:
            rows.append((f"{c['model']} {c['target']} {c['precision']}", p50, c["target"]))
        for name, v in ((device or {}).get(i) or {}).items():
            rows.append((f"  ↳ on {name}", v, "device"))
    if not rows:
        return "<p>No latency figures.</p>"
    colours = _colours([r[2] for r in rows])
    top = max(r[1] for r in rows)
    label_w, bar_h = 250, 18
    height = 10 + len(rows) * (bar_h + 6)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="latency per model">']
    for i, (label, v, group) in enumerate(rows):
        y = 5 + i * (bar_h + 6)
        w = max(1.0, v / top * (width - label_w - 80))
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_esc(label)}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colours[group]}"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{v:.2f} ms</text>')
    return "".join(parts) + "</svg>"


def render_html(doc: dict[str, Any]) -> str:
    """The whole page: summary, plots, table with host and device columns."""
    from edgest.report.bench_writers import device_p50

    cells = doc["cells"]
    devices = sorted({d["device"].get("name", "device") for d in doc.get("device_results", [])})
    per_cell_device = {i: device_p50(doc, c) for i, c in enumerate(cells)}
    head = ["model", "target", "precision", "status", "size MB", "SQNR dB", "top-1 agree", "host p50 ms", "host p90 ms", "speed-up"]
    head += [f"{_esc(d)} p50 ms" for d in devices]
    rows = []
    for i, c in enumerate(cells):
        acc, lat, art = c.get("accuracy") or {}, c.get("latency") or {}, c.get("artifact") or {}
        vals = [c["model"], c["target"], c["precision"]]
        cells_html = "".join(f"<td>{_esc(v)}</td>" for v in vals)
        cells_html += f'<td class="{_esc(c["status"])}" title="{_esc(c.get("error", ""))}">{_esc(c["status"])}{" (cached)" if c.get("cached") else ""}</td>'
        nums = [art.get("size_bytes", 0) / 1e6 if art else None, acc.get("sqnr_db"),
                acc.get("top1_agreement") * 100 if acc.get("top1_agreement") is not None else None,
                lat.get("p50_ms"), lat.get("p90_ms"), c.get("speedup_vs_eager")]
        nums += [per_cell_device[i].get(d) for d in devices]
        cells_html += "".join(f"<td>{v:.2f}</td>" if isinstance(v, (int, float)) else "<td>–</td>" for v in nums)
        rows.append(f"<tr>{cells_html}</tr>")
    host = doc["host"]
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>edgest bench</title><style>{CSS}</style></head>
<body><h1>edgest bench</h1>
<p>{len(cells)} cells · host {_esc(host.get('cpu'))} ({host.get('cpu_count')} cores) · {doc['settings']['threads']} thread(s) · {_esc(doc['created'])} · schema {_esc(doc['schema_version'])}</p>
<figure><figcaption>Latency vs accuracy (SQNR drawn at most 120 dB; exact matches sit on the top line)</figcaption>{scatter_latency_accuracy(cells)}</figure>
<figure><figcaption>p50 latency per cell{' (host and device)' if devices else ''}</figcaption>{latency_bars(cells, per_cell_device)}</figure>
<h2>All cells</h2><table id="cells"><thead><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr></thead><tbody>{''.join(rows)}</tbody></table>
</body></html>
"""
