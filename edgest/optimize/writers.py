"""The optimize folder's own reports: ``optimize.json`` (versioned), ``optimize.md`` and a self-contained ``optimize.html``.

The HTML reuses the bench report's style and latency-vs-accuracy chart (:mod:`edgest.report.charts`,
inline SVG: it opens offline); the tables list every searched cell, the winner first in bold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgest.fsio import atomic_write_files, dumps_json, finite_json
from edgest.optimize.frontier import cell_label
from edgest.report.bench_cells import num
from edgest.report.svg_marks import SQNR_CAP, esc

#: 1.0: the first optimize document
#: 1.1: settings.try_passes (passes searched as an axis) and each cell's artifact sha256; a 1.0 document reads the
#: same with them absent
#: 1.2: thread counts as an axis of the re-time: settings/retime.thread_counts, retime.winners_by_threads, each
#: cell's retime_by_threads and retime_threads, the winner's threads; a 1.1 document reads as one count
OPTIMIZE_SCHEMA_VERSION = "1.2"


def thread_counts(doc: dict[str, Any]) -> list[int]:
    """The thread counts the finalists were timed at (a 1.1 document: its one count)."""
    return doc["settings"].get("thread_counts") or [doc["settings"]["threads"]]


def table_head(counts: list[int]) -> list[str]:
    """The frontier table's columns: one "in turns" column per thread count."""
    timed = ["in turns p50 ms"] if len(counts) == 1 else [f"in turns p50 ms @{t} thr" for t in counts]
    return ["target", "precision", "status", "SQNR dB", "top-1 agree", "bench p50 ms", *timed, "vs winner",
            "within budget", "Pareto", "why not"]


def table_rows(rows: list[dict[str, Any]], counts: list[int]) -> list[list[str]]:
    """Table rows, the winner first, then finalists, then by bench p50 (untimed last)."""
    order = sorted(rows, key=lambda r: (not r["winner"], not r["finalist"], r["p50_ms"] is None, r["p50_ms"] or 0.0))
    out = []
    for r in order:
        label = f"{r['precision']}" + (f" +{'+'.join(r['passes'])}" if r["passes"] else "")
        by = r.get("retime_by_threads") or {}
        timed = [num(r["retime_p50_ms"], ".3f")] if len(counts) == 1 else [num(by.get(str(t)), ".3f") for t in counts]
        out.append([r["target"] + (" (winner)" if r["winner"] else ""), label,
                    r["status"] + (" (cached)" if r["cached"] else ""), "exact" if r["exact"] else num(r["sqnr_db"], ".1f"),
                    num(r["top1_agreement"], ".2f"), num(r["p50_ms"], ".3f"), *timed,
                    f"{r['retime_ratio']:.2f}x" if r["retime_ratio"] is not None else "–",
                    "yes" if r["within_budget"] else "no", "yes" if r["pareto"] else "",
                    "; ".join(r["reasons"]) or ("finalist" if r["finalist"] and not r["winner"] else "")])
    return out


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """Host, budget, winner (or why none), what was skipped: the lines above the table, for Markdown and the console."""
    s, w, counts = doc["settings"], doc["winner"], thread_counts(doc)
    threads = (f"{s['threads']} thread(s)" if len(counts) == 1 else
               f"threads {', '.join(map(str, counts))} (cells benched at {s['threads']}, finalists timed at each)")
    lines = [f"Host: {doc['host']['cpu']}, {doc['host']['cpu_count']} cores; ISA: {doc['isa_summary']}; {threads}.",
             f"Accuracy budget: {s['budget_text']}."]
    if w:
        at = f" at {w['threads']} thread(s)" if len(counts) > 1 else ""
        lines.append(f"Winner: {cell_label(w)}{at} — p50 {num(w['retime_p50_ms'] or w['p50_ms'], '.3f')} ms "
                     f"(in turns; bench {num(w['p50_ms'], '.3f')} ms), SQNR {'exact' if w['exact'] else num(w['sqnr_db'], '.1f') + ' dB'}, "
                     f"{num(w['speedup_vs_eager'], '.2f')}x eager → {w['run_dir']}/")
    else:
        lines.append(f"No winner: {doc['no_winner']}")
    by = doc["retime"].get("winners_by_threads") or {}
    if len(counts) > 1 and by:
        lines.append("Fastest at each count: " + "; ".join(f"{t} thread(s): {label}" for t, label in by.items()) + ".")
    if doc["retime"]["note"]:
        lines.append(f"Note: {doc['retime']['note']}")
    lines += [f"Skipped: {x}" for x in s["skipped"]]
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    """optimize.md: the summary lines and the frontier table."""
    lines = [f"# edgest optimize: {doc['settings']['model']}", ""] + [f"- {x}" for x in summary_lines(doc)]
    counts = thread_counts(doc)
    head = table_head(counts)
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table_rows(doc["cells"], counts)]
    lines += ["", ("Bench p50: each cell timed alone in its own process; in turns: the finalists timed again in one "
                   f"process, {doc['retime']['rounds']} rounds in turns (the winner is the fastest there). "
                   "Every cell's run folder, bench.json and report.html are in this folder.")]
    return "\n".join(lines) + "\n"


def render_html(doc: dict[str, Any], bench_cells: list[dict[str, Any]]) -> str:
    """optimize.html: summary, the bench's latency-vs-accuracy chart of the searched cells, the frontier table."""
    from edgest.report.charts import scatter_latency_accuracy
    from edgest.report.html import CSS

    counts = thread_counts(doc)
    head = "".join(f'<th class="text">{esc(h)}</th>' for h in table_head(counts))
    body = "".join("<tr>" + "".join(f'<td class="text">{esc(c)}</td>' for c in row) + "</tr>"
                   for row in table_rows(doc["cells"], counts))
    body = body.replace("<tr>", '<tr style="font-weight:600">', 1) if doc["winner"] else body
    items = "".join(f"<li>{esc(x)}</li>" for x in summary_lines(doc))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>edgest optimize</title><style>{CSS}</style></head>
<body><h1>edgest optimize: {esc(doc['settings']['model'])}</h1><ul class="notes">{items}</ul>
<figure><figcaption>Latency vs accuracy of the searched cells (bench p50; SQNR drawn at most {SQNR_CAP:g} dB)</figcaption>
{scatter_latency_accuracy([c for c in bench_cells if c.get('in_matrix', True)])}</figure>
<h2>Frontier</h2><table id="frontier"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
</body></html>
"""


def write_optimize_reports(doc: dict[str, Any], bench_cells: list[dict[str, Any]], out_dir: Path) -> None:
    """The three files, atomically (all or none); non-finite figures written as null."""
    doc = finite_json(doc)
    out_dir = Path(out_dir)
    atomic_write_files({out_dir / "optimize.json": dumps_json(doc), out_dir / "optimize.md": render_markdown(doc),
                        out_dir / "optimize.html": render_html(doc, bench_cells)})
