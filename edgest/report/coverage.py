"""The op-coverage section of a report: a Markdown table of ``edgest check``'s answer, for report writers to include.

Pure functions of a :class:`~edgest.coverage.Preflight` (or one target's
:class:`~edgest.coverage.Coverage`), so any writer (compile's ``report.md``, a bench's) can add the
section without asking a toolchain again. ``compile --coverage`` stores :func:`report_coverage` as
``Report.coverage`` (report schema 1.3) and :func:`report_section` renders it in ``report.md``.
"""

from __future__ import annotations

from typing import Any

from edgest.coverage import VERDICTS, Coverage, Preflight


def _op(op: str) -> str:
    return op.removeprefix("aten.").removesuffix(".default")


def _cell(coverage: Coverage, op: str) -> str:
    counts = coverage.verdicts(op)
    ordered = [v for v in VERDICTS if counts.get(v)]
    if len(ordered) <= 1:
        return ordered[0] if ordered else "-"
    return ", ".join(f"{v} {counts[v]}" for v in ordered)


def coverage_markdown(result: Preflight, only_problems: bool = False) -> list[str]:
    """``## Op coverage``: ops × targets that answered, then one line per target on how it answered or why not.

    ``only_problems`` keeps the rows where some target does not run the op natively or by a delegate.
    """
    known = {t: c for t, c in result.coverage.items() if c.status == "known"}
    lines = ["## Op coverage", "",
             ("What each target does with each op of the captured program, asked from its toolchain before compiling "
              "(native: its compiler runs it; delegated: an accelerator backend; fallback: a slow path; "
              "unsupported: the compile fails)."), ""]
    rows = []
    for o in result.ops:
        cells = [_cell(c, o["op"]) for c in known.values()]
        if only_problems and not any("fallback" in x or "unsupported" in x for x in cells):
            continue
        rows.append(f"| {_op(o['op'])} | {o['count']} | {', '.join(o['where'][:1])} | " + " | ".join(cells) + " |")
    if known and rows:
        lines += ["| op | nodes | source | " + " | ".join(known) + " |", "|---|---:|---|" + "---|" * len(known), *rows, ""]
    elif known:
        lines += ["Every op runs natively or in a delegate on every target that answered.", ""]
    lines += [f"- {t}: {c.note}" if c.status == "known" else f"- {t}: {c.status} ({c.note})" for t, c in result.coverage.items()]
    return lines


def target_summary(coverage: Coverage) -> dict[str, object]:
    """One target's coverage in a few JSON-able fields (for a report's target details): nodes per verdict, ops not native."""
    return {"status": coverage.status, "nodes": coverage.summary(),
            "not_native": sorted({f"{_op(o.op)}: {o.verdict}" for o in coverage.ops if o.verdict in ("fallback", "unsupported")})}


def nodes_text(nodes: dict[str, int]) -> str:
    """Nodes per verdict for people: ``487 delegated, 2 fallback`` ("" when there are none)."""
    return ", ".join(f"{n} {v}" for v, n in nodes.items())


def report_coverage(coverage: Coverage) -> dict[str, Any]:
    """:func:`target_summary` with how the target answered and one row per op with nodes it does not run
    natively or in a delegate (op, verdict, nodes, first source lines, why): ``Report.coverage``."""
    rows = [{"op": _op(o.op), "verdict": o.verdict, "count": o.count, "where": list(o.where), "note": o.note}
            for o in coverage.ops if o.verdict in ("fallback", "unsupported")]
    return {"target": coverage.target, **target_summary(coverage), "note": coverage.note, "rows": rows}


def report_section(data: dict[str, Any]) -> list[str]:
    """``## Op coverage`` of one compile's report from :func:`report_coverage`'s dict: the ops the target does not
    run natively or in a delegate, then its nodes per verdict and how it answered; [] when not asked."""
    if not data:
        return []
    target = data.get("target", "")
    lines = ["", "## Op coverage", ""]
    if data.get("status") != "known":
        return [*lines, f"- {target}: {data.get('status')} ({data.get('note', '')})"]
    rows = data.get("rows") or []
    if rows:
        lines += ["| op | verdict | nodes | source | why |", "|---|---|---:|---|---|",
                  *(f"| {r['op']} | {r['verdict']} | {r['count']} | {', '.join(r['where'][:1])} | {r['note']} |" for r in rows), ""]
    else:
        lines += [f"Every op runs natively or in a delegate on {target}.", ""]
    nodes = nodes_text(data.get("nodes") or {}) or "no nodes"
    return [*lines, f"- {target}: {nodes}; {data.get('note', '')}"]
