"""The winner as an ordinary run folder: the winning bench cell's run folder, hard-linked (or copied) into place.

The folder is staged beside its destination and renamed into place (:func:`edgest.outdir.staged_output`),
so ``OUT/winner`` is either the previous winner or the new one, never half of one. Its report says
where it now is (``run_dir``), so ``edgest bundle``, ``predict`` and ``debug`` take it like any compile's.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

#: bench bookkeeping that an ordinary run folder does not carry
_BENCH_ONLY = ("cell.key",)


def _link_or_copy(src: str, dst: str) -> None:
    """A hard link (the bench's cell and the winner share the bytes), else a copy (another filesystem)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_winner(cell_dir: Path, out: Path) -> Path:
    """``cell_dir`` (a bench cell's run folder) as the run folder ``out``, replacing an earlier winner there."""
    from edgest.outdir import MARKER, staged_output
    from edgest.report.writers import read_json, write_reports

    with staged_output(out, force=True, kind="run") as folder:
        for entry in sorted(os.listdir(cell_dir)):
            if entry in (MARKER, *_BENCH_ONLY):
                continue
            src = cell_dir / entry
            if src.is_dir() and not src.is_symlink():
                shutil.copytree(src, folder / entry, copy_function=_link_or_copy, symlinks=True)
            else:
                _link_or_copy(str(src), str(folder / entry))
        for name in ("report.json", "report.md"):
            (folder / name).unlink(missing_ok=True)  # hard links to the cell's: rewritten, not written through
        report = read_json(cell_dir / "report.json")
        write_reports(replace(report, run_dir=str(Path(out).absolute())), folder)
    return Path(out)


def drop_winner(out: Path) -> None:
    """Remove an earlier search's winner folder (only a run folder edgest marked; anything else stays)."""
    from edgest.outdir import read_marker

    if out.is_dir() and not out.is_symlink() and (read_marker(out) or {}).get("kind") == "run":
        shutil.rmtree(out)
