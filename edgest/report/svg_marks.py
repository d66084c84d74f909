"""SVG building blocks for the bench report's charts: markers, fills, the legend, log ticks, the Pareto front.

A point says which cell it is: marker shape = model, colour = target, fill = precision (solid
fp32, half-filled fp16 and bf16, hatched int8), hollow = incomplete, crossed = failed. The
Pareto front holds the cells that no other cell beats on both latency and accuracy.
"""

from __future__ import annotations

import html
import math
from typing import Any

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
#: one per model, in order; past eight models they repeat (the legend and each point's tooltip still say which)
SHAPES = ["circle", "square", "triangle", "diamond", "triangle-down", "pentagon", "hexagon", "star"]
#: precision → fill style; others get solid
FILLS = {"fp32": "solid", "fp16": "half-h", "bf16": "half-v", "int8": "hatch"}
SQNR_CAP = 120.0
LEGEND_W = 200
INK = "#333"


def esc(v: Any) -> str:
    """HTML/SVG-escaped text."""
    return html.escape(str(v))


def colours(names: list[str]) -> dict[str, str]:
    """A palette colour per distinct name, in first-seen order."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(dict.fromkeys(names))}


def marker(shape: str, x: float, y: float, r: float, fill: str, stroke: str, extra: str = "") -> str:
    """One marker of ``shape`` centred on (x, y)."""
    attrs = f'fill="{fill}" stroke="{stroke}" stroke-width="1.6"{extra}'
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {attrs}/>'
    if shape == "square":
        s = r * 0.9
        return f'<rect x="{x - s:.1f}" y="{y - s:.1f}" width="{2 * s:.1f}" height="{2 * s:.1f}" {attrs}/>'
    corners = {"triangle": (3, -90), "triangle-down": (3, 90), "diamond": (4, -90), "pentagon": (5, -90), "hexagon": (6, 0),
               "star": (10, -90)}
    n, start = corners.get(shape, (4, -90))
    radii = [r * 1.35, r * 0.6] if shape == "star" else [r * (1.25 if n == 3 else 1.1)]
    pts = " ".join(f"{x + radii[i % len(radii)] * math.cos(math.radians(start + i * 360 / n)):.1f},"
                   f"{y + radii[i % len(radii)] * math.sin(math.radians(start + i * 360 / n)):.1f}" for i in range(n))
    return f'<polygon points="{pts}" {attrs}/>'


def fill_defs(target_colours: dict[str, str]) -> str:
    """Gradients (half fills) and patterns (hatching) for every target colour, plus grey ones for the legend."""
    out = []
    keyed: list[tuple[int | str, str]] = [*enumerate(target_colours.values()), ("g", "#666")]
    for i, col in keyed:
        out.append(f'<linearGradient id="hh{i}" x1="0" y1="0" x2="0" y2="1"><stop offset="50%" stop-color="#fff"/>'
                   f'<stop offset="50%" stop-color="{col}"/></linearGradient>'
                   f'<linearGradient id="hv{i}" x1="0" y1="0" x2="1" y2="0"><stop offset="50%" stop-color="{col}"/>'
                   f'<stop offset="50%" stop-color="#fff"/></linearGradient>'
                   f'<pattern id="ht{i}" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
                   f'<rect width="4" height="4" fill="#fff"/><rect width="2" height="4" fill="{col}"/></pattern>')
    return "<defs>" + "".join(out) + "</defs>"


def fill_of(precision: str, colour_index: int | str, colour: str) -> str:
    """The fill for ``precision`` in ``colour``, the target colour number ``colour_index`` of :func:`fill_defs` ("g": grey)."""
    style = FILLS.get(precision, "solid")
    return {"solid": colour, "half-h": f"url(#hh{colour_index})", "half-v": f"url(#hv{colour_index})",
            "hatch": f"url(#ht{colour_index})"}[style]


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both counts (lower latency, higher accuracy), fastest first."""
    front: list[tuple[float, float]] = []
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((lat, acc))
    return front


def log_ticks(x0: float, x1: float) -> list[float]:
    """Tick values (1, 2, 5 × 10^k; finer when the range is narrow) between 10^x0 and 10^x1."""
    for steps in ((1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10.0**e for e in range(math.floor(x0) - 1, math.ceil(x1) + 1) for m in steps
                 if x0 <= math.log10(m * 10.0**e) <= x1]
        if len(ticks) >= 3:
            return ticks
    return [10**x0 * (10 ** (x1 - x0)) ** f for f in (0.1, 0.5, 0.9)]


def _legend_item(symbol: str, text: str, cls: str) -> str:
    return f'<g class="{cls}">{symbol}<text x="22" y="4">{esc(text)}</text></g>'


def legend(models: list[str], targets: dict[str, str], precisions: list[str], statuses: list[str], has_front: bool) -> tuple[str, float]:
    """The legend (SVG, drawn at x=0) and its height: model shapes, target colours, precision fills, states."""
    parts, y = [], 10.0
    groups: list[tuple[str, list[tuple[str, str, str]]]] = [
        ("model (shape)", [(marker(SHAPES[i % len(SHAPES)], 10, 0, 5, "#666", "#444"), m, "legend-model")
                           for i, m in enumerate(models)]),
        ("target (colour)", [(f'<rect x="4" y="-5" width="12" height="10" fill="{c}"/>', t, "legend-target")
                             for t, c in targets.items()]),
        ("precision (fill)", [(marker("circle", 10, 0, 5, fill_of(p, "g", "#666"), "#444"), p, "legend-precision")
                              for p in precisions])]
    states = [(hollow("circle", 10, 0, 5, "#444"), "incomplete (hollow)", "legend-status") if s == "incomplete"
              else (marker("circle", 10, 0, 5, "#666", "#444") + cross(10, 0, 5), "failed (crossed)", "legend-status")
              for s in statuses]
    if has_front:
        states.append(('<path d="M2 4 H10 V-4 H18" fill="none" stroke="#555" stroke-dasharray="4 3" stroke-width="1.5"/>',
                       "Pareto front", "legend-pareto"))
    groups.append(("", states))
    for title, items in groups:
        if not items:
            continue
        if title:
            parts.append(f'<text x="0" y="{y + 4:.0f}" font-weight="600">{esc(title)}</text>')
            y += 16
        for symbol, text, cls in items:
            parts.append(f'<g transform="translate(0 {y:.0f})">{_legend_item(symbol, text, cls)}</g>')
            y += 17
        y += 6
    return "".join(parts), y


def hollow(shape: str, x: float, y: float, r: float, stroke: str) -> str:
    """An incomplete cell's marker: outline only, dashed."""
    return marker(shape, x, y, r, "#fff", stroke, ' stroke-dasharray="2.5 1.5"')


def cross(x: float, y: float, r: float) -> str:
    """The X drawn over a failed cell's marker."""
    d = r * 1.2
    return (f'<path d="M{x - d:.1f} {y - d:.1f} L{x + d:.1f} {y + d:.1f} M{x - d:.1f} {y + d:.1f} L{x + d:.1f} {y - d:.1f}" '
            f'stroke="{INK}" stroke-width="2"/>')
