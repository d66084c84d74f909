"""SQNR along depth as inline SVG: one point per module output in graph order, the limit dashed, the culprit red.

Hand-drawn like the bench charts (:mod:`edgest.report.charts`), with their escaping and ink.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgest.checks.accuracy import SQNR_CAP_DB
from edgest.debug.localize import ModuleDiff
from edgest.report.svg_marks import INK, esc

_RED, _BLUE = "#c62828", "#1f77b4"


def _ticks(lo: float, hi: float) -> list[int]:
    step = 20 if hi - lo >= 60 else 10
    return list(range(int(lo // step * step), int(hi) + step, step))


def sqnr_along_depth(modules: Sequence[ModuleDiff], limit_db: float, culprit: str | None,
                     width: int = 720, height: int = 320) -> str:
    """The chart; x is the module's position in the graph, y its SQNR vs eager (capped at the JSON cap)."""
    if not modules:
        return "<p>No module output was compared.</p>"
    ys = [min(m.sqnr_db, SQNR_CAP_DB) for m in modules]
    ticks = _ticks(min(0.0, min(ys), limit_db), max(max(ys), limit_db + 10))
    y0, y1 = ticks[0], ticks[-1]
    L, T, R, B = 56, 14, 16, 44
    n = max(1, len(modules) - 1)

    def px(i: int) -> float:
        return L + i / n * (width - L - R)

    def py(v: float) -> float:
        return T + (y1 - v) / (y1 - y0) * (height - T - B)

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
              f'aria-label="SQNR along depth" font-family="system-ui,sans-serif" font-size="11">')]
    for v in ticks:
        parts.append(f'<line x1="{L}" y1="{py(v):.1f}" x2="{width - R}" y2="{py(v):.1f}" stroke="#eee"/>'
                     f'<text x="{L - 6}" y="{py(v) + 4:.1f}" text-anchor="end" fill="{INK}">{v}</text>')
    parts.append(f'<line x1="{L}" y1="{py(limit_db):.1f}" x2="{width - R}" y2="{py(limit_db):.1f}" stroke="{_RED}" '
                 f'stroke-dasharray="6 4"/><text x="{width - R}" y="{py(limit_db) - 4:.1f}" text-anchor="end" '
                 f'fill="{_RED}">limit {limit_db:g} dB</text>')
    line = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(ys))
    parts.append(f'<polyline points="{line}" fill="none" stroke="{_BLUE}" stroke-width="1.5"/>')
    for i, (m, v) in enumerate(zip(modules, ys)):
        col = _RED if m.module == culprit else _BLUE
        r = 5 if m.module == culprit else 3
        parts.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="{r}" fill="{col}"><title>'
                     f'{esc(f"{i}: {m.module} ({m.kind}) {m.sqnr_db:.1f} dB, drop {m.drop_db:.1f} dB")}</title></circle>')
        if m.module == culprit:
            anchor = "end" if px(i) > width / 2 else "start"
            parts.append(f'<text x="{px(i) + (-8 if anchor == "end" else 8):.1f}" y="{py(v) + 14:.1f}" text-anchor="{anchor}" '
                         f'fill="{_RED}" font-weight="600">{esc(m.module)}</text>')
    bottom = height - B
    parts.append(f'<line x1="{L}" y1="{bottom}" x2="{width - R}" y2="{bottom}" stroke="{INK}"/>'
                 f'<line x1="{L}" y1="{T}" x2="{L}" y2="{bottom}" stroke="{INK}"/>'
                 f'<text x="{(width + L) / 2:.0f}" y="{height - 8}" text-anchor="middle" fill="{INK}">'
                 f'module output, in graph order ({len(modules)} modules; hover a point for its name)</text>'
                 f'<text x="14" y="{(bottom + T) / 2:.0f}" transform="rotate(-90 14 {(bottom + T) / 2:.0f})" '
                 f'text-anchor="middle" fill="{INK}">SQNR vs eager (dB)</text>')
    return "".join(parts) + "</svg>"
