"""The bench report's two charts as inline SVG: latency vs accuracy (with the Pareto front), and p50 per cell.

Drawn by hand rather than with a plotting library: two charts do not justify a dependency in
the core, and inline SVG keeps ``report.html`` one small file that opens offline.
"""

from __future__ import annotations

import math
from typing import Any

from edgest.report.svg_marks import (INK, LEGEND_W, SHAPES, SQNR_CAP, colours, cross, esc, fill_defs, fill_of, hollow, legend,
                                     log_ticks, marker, pareto)

_PLOTTED = ("passed", "incomplete", "failed")


def _point(c: dict[str, Any]) -> tuple[float, float] | None:
    """(p50 ms, SQNR dB capped) of a cell that has both figures, else None."""
    lat, sq = (c.get("latency") or {}).get("p50_ms"), (c.get("accuracy") or {}).get("sqnr_db")
    if not isinstance(lat, (int, float)) or lat <= 0 or not isinstance(sq, (int, float)) or c["status"] not in _PLOTTED:
        return None
    return float(lat), min(float(sq), SQNR_CAP)


def unplotted(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cells the scatter cannot show (no latency or no accuracy figure, or an error)."""
    return [c for c in cells if _point(c) is None]


class _Axes:
    """Data → pixel mapping: log latency on x, SQNR on y."""

    def __init__(self, pts: list[tuple[float, float]], width: int, height: int) -> None:
        xs = [math.log10(p[0]) for p in pts]
        pad = max(0.08, (max(xs) - min(xs)) * 0.08)
        self.x0, self.x1 = min(xs) - pad, max(xs) + pad
        lo, hi = min(0.0, min(p[1] for p in pts)), max(p[1] for p in pts)
        self.step = 20 if hi - lo >= 60 else 10
        self.y0 = math.floor(lo / self.step) * self.step
        self.y1 = max(self.y0 + self.step, math.ceil(hi * 1.05 / self.step) * self.step)
        self.L, self.T, self.B, self.W, self.H = 56, 12, 42, width, height

    def x(self, v: float) -> float:
        return self.L + (math.log10(v) - self.x0) / (self.x1 - self.x0) * (self.W - self.L)

    def y(self, v: float) -> float:
        return self.T + (self.y1 - v) / (self.y1 - self.y0) * (self.H - self.T - self.B)

    def frame(self) -> list[str]:
        bottom = self.H - self.B
        out = [f'<line x1="{self.L}" y1="{bottom}" x2="{self.W}" y2="{bottom}" stroke="{INK}"/>',
               f'<line x1="{self.L}" y1="{self.T}" x2="{self.L}" y2="{bottom}" stroke="{INK}"/>',
               f'<text x="{(self.W + self.L) / 2:.0f}" y="{self.H - 6}" text-anchor="middle">p50 latency (ms, log scale; left is faster)</text>',
               f'<text x="14" y="{(bottom + self.T) / 2:.0f}" transform="rotate(-90 14 {(bottom + self.T) / 2:.0f})" '
               f'text-anchor="middle">SQNR vs eager (dB; up is closer)</text>']
        for v in log_ticks(self.x0, self.x1):
            out.append(f'<line x1="{self.x(v):.1f}" y1="{self.T}" x2="{self.x(v):.1f}" y2="{bottom}" stroke="#eee"/>'
                       f'<text x="{self.x(v):.1f}" y="{bottom + 15}" text-anchor="middle">{v:.3g}</text>')
        for v in range(int(self.y0), int(self.y1) + 1, self.step):
            out.append(f'<line x1="{self.L}" y1="{self.y(v):.1f}" x2="{self.W}" y2="{self.y(v):.1f}" stroke="#eee"/>'
                       f'<text x="{self.L - 6}" y="{self.y(v) + 4:.1f}" text-anchor="end">{v}</text>')
        return out


def _pareto_path(ax: _Axes, front: list[tuple[float, float]]) -> str:
    d = f"M{ax.x(front[0][0]):.1f} {ax.y(front[0][1]):.1f}"
    for lat, acc in front[1:]:  # across at the accuracy reached so far, then up to the next front point
        d += f" H{ax.x(lat):.1f} V{ax.y(acc):.1f}"
    return f'<path class="pareto" d="{d}" fill="none" stroke="#555" stroke-width="1.5" stroke-dasharray="5 4"/>'


def _mark(ax: _Axes, c: dict[str, Any], pt: tuple[float, float], shape: str, colour: str, index: int) -> str:
    x, y, status = ax.x(pt[0]), ax.y(pt[1]), c["status"]
    sq = (c.get("accuracy") or {}).get("sqnr_db")
    title = esc(f"{c['model']} / {c['target']} / {c['precision']}: p50 {pt[0]:.2f} ms, SQNR {sq:.1f} dB, {status}"
                + (f" — {c['error']}" if c.get("error") else ""))
    body = hollow(shape, x, y, 6, colour) if status == "incomplete" else marker(shape, x, y, 6, fill_of(c["precision"], index, colour), colour)
    body += cross(x, y, 6) if status == "failed" else ""
    return (f'<g class="pt" data-model="{esc(c["model"])}" data-target="{esc(c["target"])}" data-precision="{esc(c["precision"])}" '
            f'data-status="{esc(status)}" data-shape="{shape}"><title>{title}</title>{body}</g>')


def scatter_latency_accuracy(cells: list[dict[str, Any]], width: int = 560, height: int = 360) -> str:
    """p50 latency (log x) vs SQNR (y): shape = model, colour = target, fill = precision; Pareto front dashed."""
    plotted = [(c, p) for c in cells if (p := _point(c)) is not None]
    if not plotted:
        return "<p>No cell has both latency and accuracy figures.</p>"
    models = list(dict.fromkeys(c["model"] for c, _ in plotted))
    shapes = {m: SHAPES[i % len(SHAPES)] for i, m in enumerate(models)}
    tcol = colours([c["target"] for c in cells])  # the same colours as the bars, which show every cell
    tindex = {t: i for i, t in enumerate(tcol)}
    ax = _Axes([p for _, p in plotted], width, height)
    front = pareto([p for c, p in plotted if c["status"] != "failed"])
    front = front if len(front) > 1 else []  # one point is no front: nothing to trade off
    statuses = [s for s in ("incomplete", "failed") if any(c["status"] == s for c, _ in plotted)]
    shown = {t: tcol[t] for t in dict.fromkeys(c["target"] for c, _ in plotted)}
    key, key_h = legend(models, shown, list(dict.fromkeys(c["precision"] for c, _ in plotted)), statuses, bool(front))
    total_h = max(height, int(key_h) + 10)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + LEGEND_W + 20}" height="{total_h}" role="img" '
             f'aria-label="latency vs accuracy">', fill_defs(tcol), *ax.frame()]
    parts += [_pareto_path(ax, front)] if front else []
    parts += [_mark(ax, c, p, shapes[c["model"]], tcol[c["target"]], tindex[c["target"]]) for c, p in plotted]
    parts.append(f'<g class="legend" transform="translate({width + 20} 0)">{key}</g>')
    return "".join(parts) + "</svg>"


def latency_bars(cells: list[dict[str, Any]], device: dict[int, dict[str, float]] | None = None, width: int = 680) -> str:
    """Horizontal p50 bars per cell, coloured by target; device bars under the host bar when merged."""
    rows: list[tuple[str, float, str]] = []
    for i, c in enumerate(cells):
        p50 = (c.get("latency") or {}).get("p50_ms")
        if isinstance(p50, (int, float)) and p50 > 0:
            ref = " (reference)" if c.get("reference") else ""
            rows.append((f"{c['model']} {c['target']} {c['precision']}{ref}", p50, c["target"]))
        for name, v in ((device or {}).get(i) or {}).items():
            rows.append((f"  ↳ on {name}", v, "device"))
    if not rows:
        return "<p>No latency figures.</p>"
    col = {**colours([c["target"] for c in cells]), "device": "#8c8c8c"}  # device bars grey: not a target
    top = max(r[1] for r in rows)
    label_w, bar_h = 300, 18
    height = 10 + len(rows) * (bar_h + 6)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="latency per cell">']
    for i, (label, v, group) in enumerate(rows):
        y = 5 + i * (bar_h + 6)
        w = max(1.0, v / top * (width - label_w - 80))
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{esc(label)}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{col[group]}"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{v:.2f} ms</text>')
    return "".join(parts) + "</svg>"
