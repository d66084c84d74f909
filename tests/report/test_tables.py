"""Terminal tables never cut a figure or a header: full width off a terminal, text-only wrapping on a narrow one."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from edgest.report.console import print_table

HEAD = ["model", "target", "precision", "passes", "status", "size MB", "SQNR dB", "top-1 agree", "p50 ms", "p90 ms", "reason"]
ROW = ["emov2_tiny_video", "executorch", "int8", "quantize", "incomplete", "1.00", "27.5", "100%", "0.57", "0.68",
       "accuracy not judged: the eager output is the same for all 8 inputs; pass --weights (edgest train)"]


def _table() -> Table:
    table = Table(title="bench")
    for h in HEAD:
        table.add_column(h, no_wrap=h not in ("status", "reason"), overflow="fold")
    table.add_row(*ROW)
    return table


def _print(console: Console) -> list[str]:
    print_table(_table(), console)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def test_off_a_terminal_the_table_is_printed_whole_at_any_width():
    lines = _print(Console(file=io.StringIO(), width=80, force_terminal=False, highlight=False))
    row = next(line for line in lines if "emov2_tiny_video" in line)
    assert all(f" {v} " in row for v in ROW)  # every figure and the whole reason on the row's one line
    assert all(f" {h} " in lines[2] for h in HEAD)  # every header whole on the header line
    assert max(len(line) for line in lines) > 80


def test_on_a_narrow_terminal_only_text_columns_wrap():
    console = Console(file=io.StringIO(), width=150, force_terminal=True, color_system=None, highlight=False)
    lines = _print(console)
    assert max(len(line) for line in lines) <= 150  # fits: the reason wrapped instead
    text = "\n".join(lines)
    row = next(line for line in lines if "emov2_tiny_video" in line)
    assert all(f" {v} " in row for v in ROW[:4] + ROW[5:10])  # names and figures whole, on the first line of the row
    assert "accuracy not judged" in text and ROW[10] not in text  # the reason is folded onto several lines
    assert console.width == 150  # the caller's console is left as it was


def test_a_terminal_narrower_than_the_figures_still_keeps_them_whole():
    lines = _print(Console(file=io.StringIO(), width=40, force_terminal=True, color_system=None, highlight=False))
    row = next(line for line in lines if "emov2_tiny_video" in line)
    assert all(f" {v} " in row for v in ("emov2_tiny_video", "executorch", "0.57", "0.68", "27.5"))
