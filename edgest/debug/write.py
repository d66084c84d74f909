"""``debug.json``, ``debug.md`` and ``debug-sqnr.svg`` in the run folder: what ``edgest debug`` found."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgest.debug.chart import sqnr_along_depth
from edgest.debug.localize import DebugResult
from edgest.fsio import atomic_write_files, dumps_json

FILES = {"json": "debug.json", "markdown": "debug.md", "chart": "debug-sqnr.svg"}
#: rows of the Markdown table; debug.json has every module
TABLE_ROWS = 60


def render_markdown(result: DebugResult) -> str:
    """The debug section: verdict, the chart, and SQNR per module in graph order (worst drops marked)."""
    lines = [f"# Per-module diff: {result.model} on {result.target} ({result.precision})", "",
             f"**{'Culprit: `' + result.culprit + '`' if result.culprit else 'No culprit'}**: {result.verdict}.", ""]
    if result.output_sqnr_db is not None:
        lines.append(f"Model output SQNR in the run's accuracy check: {result.output_sqnr_db:.1f} dB; "
                     f"limit {result.limit_db:g} dB at {result.precision}.")
    lines += [(f"Compared on {result.samples} seeded input(s); SQNR of each module's output in the artifact vs eager "
               "PyTorch, in graph order. *Drop* is the lowest SQNR among the modules it reads minus its own."), "",
              f"![SQNR along depth]({FILES['chart']})", "",
              "| # | module | kind | SQNR dB | drop dB | max abs |", "|---:|---|---|---:|---:|---:|"]
    for i, m in enumerate(result.modules[:TABLE_ROWS]):
        mark = " ⟵" if m.module == result.culprit else ""
        lines.append(f"| {i} | `{m.module}`{mark} | {m.kind} | {m.sqnr_db:.1f} | {m.drop_db:.1f} | {m.max_abs:.3g} |")
    if len(result.modules) > TABLE_ROWS:
        lines.append(f"\n{len(result.modules) - TABLE_ROWS} more modules in {FILES['json']}.")
    if result.not_exposed:
        lines.append(f"\nNot exposed by the artifact ({len(result.not_exposed)}): "
                     + ", ".join(f"`{m}`" for m in result.not_exposed[:20]) + (" …" if len(result.not_exposed) > 20 else ""))
    return "\n".join(lines) + "\n"


def write_debug(result: DebugResult, folder: Path) -> DebugResult:
    """Write the three files into ``folder`` (all or none); the result with their names in ``files``."""
    result = replace(result, files=dict(FILES))
    folder = Path(folder)
    atomic_write_files({
        folder / FILES["json"]: dumps_json(result.to_dict()),
        folder / FILES["markdown"]: render_markdown(result),
        folder / FILES["chart"]: sqnr_along_depth(result.modules, result.limit_db, result.culprit),
    })
    _own(folder, list(FILES.values()))
    return result


def _own(folder: Path, names: list[str]) -> None:
    """List ``names`` in the run folder's marker, so a later ``compile --force`` still knows them for edgest's."""
    from edgest.fsio import atomic_write_text
    from edgest.outdir import MARKER, read_marker

    marker = read_marker(folder)
    if marker is not None and isinstance(marker.get("files"), list):
        marker["files"] = sorted(set(marker["files"]) | set(names))
        atomic_write_text(folder / MARKER, dumps_json(marker))
