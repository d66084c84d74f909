"""Rows, faithfulness, ratios and the Markdown tables of ``bench/peers.py``.

A candidate is faithful when it meets edgest's own accuracy limits (:data:`edgest.checks.accuracy.LIMITS`)
for the precision it runs at: int8 artifacts at the int8 limits, float ones at the precision their
runtime reports executing (OpenVINO's default may run bf16), else their nominal one.
"""

from __future__ import annotations

import math
from typing import Any

from edgest.checks.accuracy import LIMITS, within

#: runtime spellings of the float precisions
RUNTIME_PRECISIONS = {"f32": "fp32", "bf16": "bf16", "f16": "fp16", "fp32": "fp32", "fp16": "fp16"}


def judged_at(candidate: dict[str, Any], facts: dict[str, Any]) -> str:
    """The precision whose limits judge ``candidate``."""
    if candidate["precision"] == "int8":
        return "int8"
    return RUNTIME_PRECISIONS.get(str(facts.get("executes", "")), candidate["precision"] if candidate["precision"] in LIMITS else "fp32")


def row(candidate: dict[str, Any], result: dict[str, Any] | None) -> dict[str, Any]:
    """One table row from a candidate and its timing-process result (None: it never reached that process)."""
    out = {k: candidate.get(k) for k in ("key", "side", "label", "precision", "how", "build_s", "edgest_status", "edgest_sqnr_db")}
    error = candidate.get("error") or (result or {}).get("error")
    if error or result is None:
        return {**out, "error": error or "not timed", "faithful": None}
    facts, acc, lat = result.get("facts", {}), result["accuracy"], result.get("latency", {})
    at = judged_at(candidate, facts)
    broken = within(acc, LIMITS[at])
    return {**out, "facts": facts, "executes": facts.get("executes", candidate["precision"]), "judged_at": at,
            "sqnr_db": acc["sqnr_db"], "top1_agreement": acc["top1_agreement"], "max_abs": acc["max_abs"],
            "p50_ms": lat.get("p50_ms"), "min_p50_ms": lat.get("min_p50_ms"), "max_p50_ms": lat.get("max_p50_ms"),
            "faithful": not broken, "broken": broken}


def add_ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Set each row's ``ratio`` to the best faithful peer's p50; return the summary (best peer, best edgest, their ratio)."""
    def best(side: str) -> dict[str, Any] | None:
        ok = [r for r in rows if r["side"] == side and r.get("faithful") and r.get("p50_ms")]
        return min(ok, key=lambda r: r["p50_ms"]) if ok else None

    peer, mine = best("peer"), best("edgest")
    for r in rows:
        r["ratio"] = r["p50_ms"] / peer["p50_ms"] if peer and r.get("p50_ms") else None
    return {"best_peer": peer and peer["key"], "best_peer_p50_ms": peer and peer["p50_ms"],
            "best_edgest": mine and mine["key"], "best_edgest_p50_ms": mine and mine["p50_ms"],
            "edgest_vs_best_peer": mine["p50_ms"] / peer["p50_ms"] if mine and peer else None}


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, fmt)


def _cell_text(r: dict[str, Any]) -> list[str]:
    if "error" in r:
        return ["-", "-", "-", "-", "-", f"error: {r['error']}".replace("|", "/")]
    faithful = "yes" if r["faithful"] else "no: " + "; ".join(r["broken"])
    layers = r.get("facts", {}).get("compute_layers")
    runs = f"{r['executes']}" + (f" ({', '.join(f'{k} {v}' for k, v in layers.items())})" if layers else "")
    p50 = f"{_num(r['p50_ms'], '.2f')} ({_num(r['min_p50_ms'], '.1f')}–{_num(r['max_p50_ms'], '.1f')})"
    return [p50, _num(r["ratio"], ".2f") + ("×" if r["ratio"] else ""), _num(r["sqnr_db"], ".1f"),
            _num(r["top1_agreement"], ".0%"), faithful, runs]


def markdown(model: str, threads: int, rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """One model's table at one thread count, fastest first, failures last, then its summary line."""
    head = ["candidate", "side", "p50 ms (min–max of turns)", "× best faithful peer", "SQNR dB", "top-1 agr.", "faithful",
            "runs at (compute layers)"]
    lines = [f"**{model}, {threads} thread{'s' if threads != 1 else ''}**", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    order = sorted(rows, key=lambda r: (r.get("p50_ms") is None, r.get("p50_ms") or 0.0))
    for r in order:
        best = r["key"] in (summary["best_peer"], summary["best_edgest"])
        name = f"**{r['label']}**" if best else r["label"]
        lines.append("| " + " | ".join([name, r["side"], *_cell_text(r)]) + " |")
    if summary["edgest_vs_best_peer"] is not None:
        lines += ["", (f"edgest's best faithful ({summary['best_edgest']}, {summary['best_edgest_p50_ms']:.2f} ms) is "
                       f"{summary['edgest_vs_best_peer']:.2f}× the best faithful peer ({summary['best_peer']}, "
                       f"{summary['best_peer_p50_ms']:.2f} ms).")]
    return "\n".join(lines) + "\n"
