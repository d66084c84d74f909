"""The report's streaming section: the step interface an app developer implements, and the stream's figures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgest.records import Report


def _row(t: dict[str, Any], where: str) -> str:
    initial = t.get("initial", "")
    initial = initial if isinstance(initial, str) else "values in streaming.json"
    shape = "x".join(map(str, t["shape"])) or "scalar"
    return f"| {where} | `{t['name']}` | {shape} | {t['dtype']} | {initial or '–'} | {t.get('description', '')} |"


def markdown_section(report: Report) -> list[str]:
    """``## Streaming interface``: inputs, outputs, feedback, hop and (when measured) the real-time factor."""
    iface = report.streaming
    if not iface:
        return []
    intro = (f"One call per step ({iface['steps']} steps per sequence, a step every {iface['step_seconds'] * 1e3:g} ms, "
             f"{iface['rate_hz']:g} Hz); {iface['semantics']}. Also in `streaming.json`.")
    lines = ["", "## Streaming interface", "", intro, "", "| | name | shape | dtype | initial | meaning |", "|---|---|---|---|---|---|"]
    lines += [_row(t, f"input {i}") for i, t in enumerate(iface["inputs"])]
    lines += [_row(t, f"output {i}") for i, t in enumerate(iface["outputs"])]
    check = report.check("streaming")
    m = check.metrics if check else {}
    if m.get("real_time_factor") is not None:
        timing = (f"Per step: p50 {m['step_p50_ms']:.3f} ms, p90 {m['step_p90_ms']:.3f} ms over {m['step_runs']} steps of "
                  f"one continuous stream (state carried); cold load {m.get('cold_load_ms') or 0:.1f} ms; real-time factor "
                  f"{m['real_time_factor']:.4f} at a {m['hop_ms']:g} ms hop (below 1 keeps up).")
        lines += ["", timing]
    if "sqnr_db" in m:
        judged = (f"Against the parallel model over {m['sequences']} sequences: worst step SQNR {m['sqnr_db']:.1f} dB "
                  f"(step {m['worst_step']}), top-1 agreement {m['top1_agreement']:.1%} over every step, drift "
                  f"{m['first_step_sqnr_db']:.1f} → {m['last_step_sqnr_db']:.1f} dB from first to last step.")
        lines += ["", judged]
    return lines
