"""Tables on the terminal that never cut a figure, and the short table ``edgest compile`` prints.

Off a terminal (a pipe, a CI log) a table is printed at its full natural width, whatever
``COLUMNS`` says; on a terminal narrower than the table only the free-text columns wrap, and
columns marked ``no_wrap`` (names, figures) keep every character, even if the table must then be
wider than the terminal.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from edgest.records import CheckResult, Report
from edgest.report.run_markdown import task_note
from edgest.report.weights import short_label

_UNBOUNDED = 1_000_000


def table_width(table: Table, console: Console) -> int:
    """The width ``table`` is printed at on ``console``: full width off a terminal; on one, at least the
    console's width and enough for every ``no_wrap`` column to stay whole."""
    wide = console.options.update_width(_UNBOUNDED)
    for col in table.columns:
        if col.no_wrap and col.min_width is None:  # a no_wrap column's minimum is its longest cell, not its longest word
            col.min_width = max(Measurement.get(console, wide, cell).maximum for cell in [col.header, *col.cells])
    need = Measurement.get(console, wide, table)
    return max(console.width, need.minimum if console.is_terminal else need.maximum)


def print_table(table: Table, console: Console | None = None) -> None:
    """Print ``table`` without cutting a figure or a header (see the module docstring)."""
    console = console or Console(highlight=False)
    if not console.is_terminal and table.title:  # a title (often a path) on its own line, never folded
        console.print(table.title, style="table.title", soft_wrap=True)
        table.title = None
    width, before = table_width(table, console), console.width
    console.width = width
    try:
        console.print(table)
    finally:
        console.width = before


def _figures(c: CheckResult) -> str:
    """The key figures of a check on one line (its reason when it has none)."""
    m = c.metrics
    if c.kind == "accuracy" and m:
        over = f"{m['samples']} inputs" + (f" + {m['task_samples']} clips" if "task_top1" in m else "")
        figs = (f"max abs {m['max_abs']:.2e}, SQNR {m['sqnr_db']:.1f} dB, cosine {m['cosine']:.6f}, "
                f"top-1 agree {m['top1_agreement']:.0%} ({over})")
        if "task_top1" in m:
            figs += (f"; task top-1 {m['task_top1']:.1%} (eager {m['task_top1_eager']:.1%}, "
                     f"drop {m['task_top1_drop_pts']:.1f} pt, {task_note(m)})")
        return figs
    if c.kind == "latency" and m:
        return (f"p50 {m['p50_ms']:.2f} ms, p90 {m['p90_ms']:.2f} ms, cold load {m['cold_load_ms']:.0f} ms, "
                f"{m['threads']} thread(s), {m['runs']} runs")
    if c.kind == "streaming" and "sqnr_db" in m:
        rtf = (f"; step p50 {m['step_p50_ms']:.3f} ms, real-time factor {m['real_time_factor']:.4f} at {m['hop_ms']:g} ms"
               if m.get("real_time_factor") is not None else "")
        return (f"worst step SQNR {m['sqnr_db']:.1f} dB, top-1 agree {m['top1_agreement']:.0%} over {m['steps']} steps x "
                f"{m['sequences']} sequences{rtf}" + (f"; {c.reason}" if c.reason else ""))
    return c.reason


def print_report(report: Report, out_dir: Path) -> None:
    """Verdict, artifact and the key figures of each check."""
    console = Console(highlight=False)
    colour = {"passed": "green", "failed": "red", "incomplete": "yellow"}.get(report.status, "red")
    table = Table(title=f"{report.model.name} → {report.target} ({report.precision})", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("figures")
    for c in report.checks:
        table.add_row(c.kind + (f" on {c.host.get('name')}" if c.host.get("where") == "device" else ""), c.status, _figures(c))
    print_table(table, console)
    if report.artifact:
        a = report.artifact
        console.print(f"artifact: {out_dir / a.path} ({a.size_bytes / 1e6:.2f} MB, compiled in {a.compile_seconds:.1f} s)",
                      soft_wrap=True)
    console.print(f"weights:  {short_label(report.weights)}", soft_wrap=True)
    console.print(f"report:   {out_dir / 'report.md'}", soft_wrap=True)
    console.print(f"status:   [{colour}]{report.status}[/{colour}]" + (f" — {report.error}" if report.error else ""), soft_wrap=True)
