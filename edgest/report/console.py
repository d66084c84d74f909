"""The short table ``edgest compile`` prints."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from edgest.records import Report
from edgest.report.writers import task_note


def print_report(report: Report, out_dir: Path) -> None:
    """Verdict, artifact and the key figures of each check."""
    console = Console(highlight=False)
    colour = {"passed": "green", "failed": "red", "incomplete": "yellow"}.get(report.status, "red")
    table = Table(title=f"{report.model.name} → {report.target} ({report.precision})", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("figures")
    for c in report.checks:
        m = c.metrics
        if c.kind == "accuracy" and m:
            over = f"{m['samples']} inputs" + (f" + {m['task_samples']} clips" if "task_top1" in m else "")
            figs = (f"max abs {m['max_abs']:.2e}, SQNR {m['sqnr_db']:.1f} dB, cosine {m['cosine']:.6f}, "
                    f"top-1 agree {m['top1_agreement']:.0%} ({over})")
            if "task_top1" in m:
                figs += (f"; task top-1 {m['task_top1']:.1%} (eager {m['task_top1_eager']:.1%}, "
                         f"drop {m['task_top1_drop_pts']:.1f} pt, {task_note(m)})")
        elif c.kind == "latency" and m:
            figs = f"p50 {m['p50_ms']:.2f} ms, p90 {m['p90_ms']:.2f} ms, cold load {m['cold_load_ms']:.0f} ms, {m['threads']} thread(s), {m['runs']} runs"
        else:
            figs = c.reason
        table.add_row(c.kind, c.status, figs)
    console.print(table)
    if report.artifact:
        a = report.artifact
        console.print(f"artifact: {out_dir / a.path} ({a.size_bytes / 1e6:.2f} MB, compiled in {a.compile_seconds:.1f} s)")
    console.print(f"report:   {out_dir / 'report.md'}")
    console.print(f"status:   [{colour}]{report.status}[/{colour}]" + (f" — {report.error}" if report.error else ""))
