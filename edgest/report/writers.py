"""Write a :class:`~edgest.records.Report` as ``report.json`` and ``report.md``, and read one back checked.

Both files are written through :mod:`edgest.fsio`: neither changes unless both could be written,
and non-finite figures are written as ``null``. Reading back checks the document's shape and,
for a run folder, that the artifact is the one the report describes (sha256). The Markdown itself
is rendered by :mod:`edgest.report.run_markdown`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgest.errors import BadInput
from edgest.fsio import atomic_write_files, dumps_json
from edgest.records import SCHEMA_VERSION, Report
from edgest.report.run_markdown import render_markdown, sensitivity_table, task_line, task_note

__all__ = ["artifact_problem", "bench_folder_refusal", "read_json", "read_run", "render_markdown", "sensitivity_table", "task_line", "task_note",
           "write_reports"]

_STATUSES = ("passed", "failed", "incomplete", "error")


def write_reports(report: Report, folder: Path) -> None:
    """Write ``report.json`` and ``report.md`` into ``folder`` (atomically, both or neither)."""
    folder = Path(folder)
    atomic_write_files({folder / "report.json": dumps_json(report.to_dict()), folder / "report.md": render_markdown(report)})


def read_json(path: Path) -> Report:
    """Read a ``report.json``; BadInput (one line) if it is not one or its schema is newer than ours."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BadInput(f"cannot read report '{path}': {exc.strerror or exc}; restore report.json or compile the run "
                       "again") from None
    except (ValueError, RecursionError) as exc:  # truncated, edited, or not text
        raise BadInput(f"cannot read report '{path}': it is not valid JSON ({exc}; truncated or edited?); restore "
                       "report.json from a copy or compile the run again") from None
    if not isinstance(data, dict):
        raise BadInput(f"'{path}' is not an edgest report (not a JSON object); pass the report.json edgest compile wrote")
    major = str(data.get("schema_version", "")).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise BadInput(f"report '{path}' has schema {data.get('schema_version')!r}; this edgest reads {SCHEMA_VERSION}")
    try:
        report = Report.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadInput(f"report '{path}' is damaged ({type(exc).__name__}: {exc}); compile the run again") from None
    problem = _shape_problem(report)
    if problem:
        raise BadInput(f"report '{path}' is damaged ({problem}); compile the run again")
    return report


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shape_problem(report: Report) -> str:
    """The first field of ``report`` whose type edgest's readers and writers cannot use, or ''."""
    if report.status not in _STATUSES:
        return f"status {report.status!r}"
    art = report.artifact
    if art is not None and not (isinstance(art.path, str) and isinstance(art.sha256, str) and isinstance(art.size_bytes, int)
                                and _number(art.compile_seconds) and isinstance(art.toolchain, dict)
                                and isinstance(art.details, dict)):
        return "artifact fields"
    if not all(_number(p.seconds) and isinstance(p.details, dict) and isinstance(p.accuracy_delta, (dict, type(None)))
               for p in report.passes):
        return "pass records"
    if not all(c.kind in ("accuracy", "latency", "streaming") and isinstance(c.metrics, dict) and isinstance(c.limits, dict)
               and isinstance(c.host, dict) for c in report.checks):
        return "checks"
    return ""


def artifact_problem(folder: Path, report: Report) -> str:
    """Why the artifact in run ``folder`` is not the one ``report`` describes ('' when it is)."""
    art = report.artifact
    if art is None:
        return f"run '{folder}' has no artifact (status {report.status})"
    if art.path in ("", ".", "..") or Path(art.path).name != art.path:
        return f"run '{folder}' names its artifact '{art.path}', which is not a file in the run folder"
    path = Path(folder) / art.path
    if not path.exists() or path.is_symlink():
        return f"run '{folder}' lacks its artifact '{art.path}'"
    if not art.sha256:  # reports before schema 1.1 left package folders (Core ML) without one
        return "" if path.is_dir() else f"report.json of run '{folder}' records no sha256 for its artifact"
    from edgest.fsio import sha256_of

    if sha256_of(path) != art.sha256:
        return f"the artifact '{path}' changed since it was compiled (sha256 differs from report.json)"
    return ""


def bench_folder_refusal(path: Path) -> None:
    """BadInput when ``path`` is a bench (or optimize) folder: it holds runs, one per cell, and is not one."""
    if path.is_dir() and (path / "bench.json").is_file():
        cells = sorted((c.name for c in (path / "cells").glob("*") if (c / "report.json").is_file()),
                       key=lambda name: ("__eager__" in name, name))  # a compiled cell before the eager reference
        raise BadInput(f"'{path}' is a bench folder, not one run; give one of its cells"
                       + (f", e.g. '{path / 'cells' / cells[0]}'" if cells else f" ({path / 'cells'}/NAME)"))


def read_run(folder: Path) -> Report:
    """The report of the compile run in ``folder``, checked against its artifact; BadInput otherwise."""
    folder = Path(folder)
    if not (folder / "report.json").is_file():
        bench_folder_refusal(folder)
        raise BadInput(f"'{folder}' is not an edgest run folder (no report.json); pass the folder edgest compile wrote (its --out; report.run_dir)")
    report = read_json(folder / "report.json")
    problem = artifact_problem(folder, report)
    if problem:
        raise BadInput(f"{problem}; compile it again")
    return report
