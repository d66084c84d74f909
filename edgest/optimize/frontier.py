"""The frontier: every searched cell judged against the accuracy budget, its Pareto flag, the finalists and the winner.

A cell qualifies when it passed (every check, the accuracy check included: a cell that failed its
own precision's accuracy limits is never a winner), was timed on this host, and meets the budget
(``--min-sqnr`` or ``--max-accuracy-drop``, and ``--max-latency-ms``). The finalists are the fastest
qualifying cells by the bench's p50; the winner is the fastest finalist when they are timed again
in turns in one process (:mod:`edgest.optimize.retiming`).
"""

from __future__ import annotations

import math
from typing import Any

from edgest.bench import Budget
from edgest.report.svg_marks import SQNR_CAP, pareto


def _p50(cell: dict[str, Any]) -> float | None:
    p50 = (cell.get("latency") or {}).get("p50_ms")
    return float(p50) if isinstance(p50, (int, float)) and math.isfinite(p50) and p50 > 0 else None


def _sqnr(cell: dict[str, Any]) -> float | None:
    """SQNR vs eager, capped as the charts draw it (an exact match is infinite, or null once written)."""
    acc = cell.get("accuracy") or {}
    if acc.get("status") == "passed" and acc.get("sqnr_db") is None and acc.get("max_abs") == 0:
        return SQNR_CAP
    sq = acc.get("sqnr_db")
    return min(float(sq), SQNR_CAP) if isinstance(sq, (int, float)) and not math.isnan(sq) else None


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _accuracy_reason(acc: dict[str, Any]) -> str:
    """Why the accuracy check did not pass, with the figures that missed its limits."""
    limits, misses = acc.get("limits") or {}, []
    sq, lo = acc.get("sqnr_db"), limits.get("min_sqnr_db")
    if isinstance(sq, (int, float)) and isinstance(lo, (int, float)) and sq < lo:
        misses.append(f"SQNR {sq:.1f} dB < {lo:g} dB")
    agree, lo_agree = acc.get("top1_agreement"), limits.get("min_top1_agreement")
    if isinstance(agree, (int, float)) and isinstance(lo_agree, (int, float)) and agree < lo_agree:
        misses.append(f"top-1 agreement {agree:.2f} < {lo_agree:g}")
    return f"accuracy check {acc.get('status', 'not run')}" + (f" ({', '.join(misses)})" if misses else "")


def reasons(cell: dict[str, Any], budget: Budget) -> list[str]:
    """Why ``cell`` cannot be the winner (empty: it qualifies)."""
    if cell["status"] in ("error", "not_run"):
        first = ((cell.get("error") or "").strip().splitlines() or [""])[0]
        return [f"{cell['status'].replace('_', ' ')}: {first[:200]}" if first else cell["status"]]
    out = []
    acc = cell.get("accuracy") or {}
    if acc.get("status") != "passed":
        out.append(_accuracy_reason(acc))
    elif cell["status"] != "passed":
        out.append(f"status {cell['status']} (see its report.md)")
    if _p50(cell) is None:
        out.append("not timed on this host (latency check "
                   f"{(cell.get('latency') or {}).get('status', 'not run').replace('_', ' ')}; see its report.md)")
    return out + budget.violations(cell)


def frontier(cells: list[dict[str, Any]], budget: Budget, finalists: int = 3) -> list[dict[str, Any]]:
    """One row per searched cell (the bench's ``in_matrix`` cells): its figures, ``within_budget``, ``reasons``,
    ``pareto`` (no other timed, faithful-or-not cell is both faster and closer to eager) and ``finalist``."""
    searched = [c for c in cells if c.get("in_matrix", True)]
    rows = [_row(c, reasons(c, budget)) for c in searched]
    _unchanged_by_passes(rows)
    drawn = {id(r): (r["p50_ms"], _sqnr(c)) for r, c in zip(rows, searched)}  # as the chart draws them
    front = set(pareto([p for r in rows if None not in (p := drawn[id(r)]) and r["status"] != "failed"]))
    ranked = sorted((r for r in rows if r["within_budget"]), key=lambda r: r["p50_ms"])
    chosen = {id(r) for r in ranked[:max(1, finalists)]}
    for r in rows:
        r["pareto"] = drawn[id(r)] in front
        r["finalist"] = id(r) in chosen
    return rows


def cell_label(row: dict[str, Any]) -> str:
    """``onnx int8``, with ``+pass`` for each pass the cell ran (two cells differing only in passes stay apart)."""
    return " ".join([row["target"], row["precision"], *(f"+{p}" for p in row["passes"])])


def _unchanged_by_passes(rows: list[dict[str, Any]]) -> None:
    """A cell whose artifact is byte-identical to that of the same target and precision with fewer passes (its
    extra passes changed nothing, e.g. ``--try-pass attention-to-conv`` on a model without attention) is not a
    candidate of its own: the two would be told apart by timing noise alone."""
    for row in rows:
        twin = next((o for o in rows if o["sha256"] and o["sha256"] == row["sha256"] and len(o["passes"]) < len(row["passes"])
                     and (o["target"], o["precision"]) == (row["target"], row["precision"])), None)
        if twin is not None:
            extra = "+".join(p for p in row["passes"] if p not in twin["passes"])
            row["reasons"].append(f"the same artifact as {cell_label(twin)}: {extra} changed nothing")
            row["within_budget"] = False


def _row(cell: dict[str, Any], why: list[str]) -> dict[str, Any]:
    acc, art = cell.get("accuracy") or {}, cell.get("artifact") or {}
    return {
        "model": cell["model"], "target": cell["target"], "precision": cell["precision"], "passes": list(cell["passes"]),
        "status": cell["status"], "cached": cell["cached"], "run_dir": cell["run_dir"],
        "sqnr_db": _finite(acc.get("sqnr_db")), "exact": acc.get("max_abs") == 0, "top1_agreement": acc.get("top1_agreement"), "accuracy_status": acc.get("status"),
        "accuracy_limits": acc.get("limits"), "p50_ms": _p50(cell), "p90_ms": (cell.get("latency") or {}).get("p90_ms"),
        "speedup_vs_eager": cell.get("speedup_vs_eager"), "size_bytes": art.get("size_bytes"),
        "compile_seconds": art.get("compile_seconds"), "sha256": art.get("sha256"), "within_budget": not why, "reasons": why,
        "retime_p50_ms": None, "retime_ratio": None, "retime_vs_bench": None, "retime_threads": None,
        "retime_by_threads": {}, "winner": False,
    }


def no_winner_reason(rows: list[dict[str, Any]], budget: Budget) -> str:
    """One line for a search with no qualifying cell: what stopped the closest cells, and the fix."""
    if not rows:
        return "no cell was searched; pass --targets and --precisions that this host can build"
    if all(r["status"] in ("error", "not_run") for r in rows):
        return f"every cell failed to build ({rows[0]['target']} {rows[0]['precision']}: {rows[0]['reasons'][0]}); see bench.json"
    faithful = [r for r in rows if r["accuracy_status"] == "passed" and r["status"] == "passed" and r["p50_ms"] is not None]
    if faithful and budget.min_sqnr_db is not None and all(any(s.startswith("SQNR") for s in r["reasons"]) for r in faithful):
        best = max(r["sqnr_db"] or 0.0 for r in faithful)
        return f"no cell reaches --min-sqnr {budget.min_sqnr_db:g} dB (the best reaches {best:.1f} dB); loosen --min-sqnr"
    if faithful and budget.max_accuracy_drop is not None and all(any("drop" in s for s in r["reasons"]) for r in faithful):
        return f"no cell stays within --max-accuracy-drop {budget.max_accuracy_drop:g} pt; loosen --max-accuracy-drop"
    if faithful and budget.max_latency_ms and all(any(s.startswith("p50") for s in r["reasons"]) for r in faithful):
        best = min(r["p50_ms"] for r in faithful)
        return f"no faithful cell is within --max-latency-ms (the fastest takes {best:.2f} ms); loosen --max-latency-ms"
    if faithful:
        return f"no faithful cell meets the budget ({'; '.join(faithful[0]['reasons'])}); loosen the budget"
    return ("no cell passed its accuracy check and was timed on this host; add targets or precisions (fp32 is the "
            "most faithful), or pass --weights for a trained model")
