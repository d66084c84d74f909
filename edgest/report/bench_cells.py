"""What a bench report says about each cell, shared by ``report.md`` and ``report.html``.

Figures are read from a bench document (``bench.json``) as written: a figure that was not finite
is ``null`` and shows as "–". Device results merged with ``edgest report merge`` are matched to
their cell by the artifact's sha256 and shown as columns beside the host's figures.
"""

from __future__ import annotations

from typing import Any

from edgest.report.weights import short_label

MISSING = "–"


def num(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``; '–' for a figure that is missing (null: not finite when written)."""
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else MISSING


def ordered(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cells grouped by model (first-seen order), each model's speed-up reference first, then as run."""
    models = list(dict.fromkeys(c["model"] for c in cells))
    return sorted(cells, key=lambda c: (models.index(c["model"]), not c.get("reference")))


def device_names(doc: dict[str, Any]) -> list[str]:
    """Names of the devices whose results are merged, sorted."""
    return sorted({(d.get("device") or {}).get("name", "device") for d in doc.get("device_results", [])})


def device_figures(doc: dict[str, Any], cell: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Device name → ``{"p50_ms", "p90_ms", "sqnr_db", "status", "reason"}`` merged for ``cell``.

    Matched by the artifact's sha256, else (documents without one) by model, target and precision.
    """
    out: dict[str, dict[str, Any]] = {}
    sha = (cell.get("artifact") or {}).get("sha256")
    for d in doc.get("device_results", []):
        same = (sha and d.get("artifact_sha256") == sha) or (not sha and (d.get("model"), d.get("target"), d.get("precision"))
                                                             == (cell["model"], cell["target"], cell["precision"]))
        if not same:
            continue
        acc, lat = d.get("accuracy") or {}, d.get("latency") or {}
        out[(d.get("device") or {}).get("name", "device")] = {
            "p50_ms": lat.get("p50_ms"), "p90_ms": lat.get("p90_ms"), "sqnr_db": acc.get("sqnr_db"),
            "status": acc.get("status", ""), "reason": lat.get("reason") or acc.get("reason") or "",
            "real_time_factor": lat.get("real_time_factor")}  # a streaming bundle's: per-step p50 / hop
    return out


def device_lines(doc: dict[str, Any]) -> list[str]:
    """One line per merged device: what it is and how many cells it ran."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for d in doc.get("device_results", []):
        runs.setdefault((d.get("device") or {}).get("name", "device"), []).append(d)
    out = []
    for name, results in sorted(runs.items()):
        info = results[0].get("device") or {}
        out.append(f"Device {name}: {info.get('os', '?')}, {info.get('machine', '?')}, {info.get('runtime', '?')} "
                   f"{info.get('runtime_version', '')}; {len(results)} cell(s) run there, figures in the {name} columns.")
    return out


def device_p50(doc: dict[str, Any], cell: dict[str, Any]) -> dict[str, float]:
    """Device name → p50 ms merged for this cell (devices that timed it)."""
    return {name: f["p50_ms"] for name, f in device_figures(doc, cell).items() if f["p50_ms"] is not None}


def status_label(cell: dict[str, Any]) -> str:
    """``passed``, ``incomplete (cached)``, ``passed · reference``: the status and how the cell came to be."""
    label = cell["status"] + (" (cached)" if cell.get("cached") else "")
    return label + (" · reference" if cell.get("reference") else "")


def reason(cell: dict[str, Any]) -> str:
    """Why a cell is not plainly passed: its error and any budget it is over ('' when there is nothing to say)."""
    parts = [cell["error"]] if cell.get("error") else []
    if cell.get("budget_violations"):
        parts.append("over budget: " + "; ".join(cell["budget_violations"]))
    if cell.get("reference") and not cell.get("in_matrix", True):
        parts.append("eager PyTorch, timed as the speed-up reference (not in the matrix, not judged against the budget)")
    return " — ".join(parts)


def speedup(cell: dict[str, Any]) -> str:
    """``13.58×``, ``1.00× (reference)``, or '–' when the cell or its model's eager reference has no p50."""
    s = cell.get("speedup_vs_eager")
    if not isinstance(s, (int, float)):
        return MISSING
    return f"{s:.2f}×" + (" (reference)" if cell.get("reference") else "")


def agreement(acc: dict[str, Any]) -> str:
    """Top-1 agreement with eager as a percentage."""
    a = acc.get("top1_agreement")
    return num(a * 100, ".0f") + "%" if isinstance(a, (int, float)) else MISSING


def weights_by_model(doc: dict[str, Any]) -> dict[str, str]:
    """Model → a short weights label (``random init``, ``w.pt (sha256 ab12…)``, ``not recorded``)."""
    recorded = (doc.get("settings") or {}).get("weights") or {}
    models = list(dict.fromkeys(c["model"] for c in doc["cells"]))
    return {m: short_label(recorded.get(m)) for m in models}


def protocol(doc: dict[str, Any]) -> str:
    """How the bench timed its cells and what "passed" means for latency, in one paragraph."""
    settings = doc.get("settings") or {}
    cfg, threads = settings.get("latency") or {}, settings.get("threads", 1)
    how = (f"p50 of at least {cfg['min_runs']} timed runs (and {cfg.get('min_seconds', 0):g} s) after {cfg.get('warmup', 0)} "
           f"warm-up run(s)" if "min_runs" in cfg else "p50 of the timed runs after warm-up")
    limits = (settings.get("budget") or {}).get("max_latency_ms") or {}
    budget = (", ".join(f"{'every target' if t == '*' else t} ≤ {v:g} ms" for t, v in limits.items())
              if limits else "none was given")
    return (f"Latency: {how}, {threads} thread(s), on the host above. \"passed\" means measured: there is no latency "
            f"limit unless a budget is given (latency budget: {budget}). Speed-up vs eager: the p50 of the model's "
            "eager PyTorch cell (timed once per model, the reference) divided by the cell's p50.")


#: the streaming figures a bench cell keeps (the per-step lists stay in the cell's report.json)
STREAMING_KEYS = ("sqnr_db", "top1_agreement", "drift_db", "last_step_sqnr_db", "step_p50_ms", "step_p90_ms",
                  "cold_load_ms", "hop_ms", "real_time_factor", "real_time_factor_p90", "steps")


def streaming_record(check: Any) -> dict[str, Any]:
    """A ``--streaming`` cell's ``streaming`` entry from its streaming check."""
    return {"status": check.status, **{k: check.metrics[k] for k in STREAMING_KEYS if k in check.metrics}}


STREAMING_HEAD = ("model", "target", "precision", "status", "worst-step SQNR dB", "step p50 ms", "step p90 ms",
                  "cold load ms", "hop ms", "real-time factor")
STREAMING_NOTE = ("Real-time factor: step p50 / hop; below 1 the artifact keeps up with the live stream on this host "
                  "(a device's columns: on that device, from its streaming bundle).")


def streaming_devices(doc: dict[str, Any]) -> list[str]:
    """Devices whose merged results include a streaming bundle's (they get step p50 and real-time factor columns)."""
    return sorted({(d.get("device") or {}).get("name", "device") for d in doc.get("device_results", []) if d.get("streaming")})


def streaming_head(doc: dict[str, Any]) -> list[str]:
    """:data:`STREAMING_HEAD`, then per streaming device its step p50 and real-time factor."""
    return [*STREAMING_HEAD, *(f"{d} {what}" for d in streaming_devices(doc) for what in ("step p50 ms", "real-time factor"))]


def streaming_rows(doc: dict[str, Any]) -> list[list[str]]:
    """One row (:func:`streaming_head`) per ``--streaming`` cell: per-step latency, cold load and real-time factor."""
    rows, devices = [], streaming_devices(doc)
    for c in ordered(doc["cells"]):
        s = c.get("streaming")
        if s:
            dev = device_figures(doc, c)
            rows.append([c["model"], c["target"], c["precision"], s["status"], num(s.get("sqnr_db"), ".1f"),
                         num(s.get("step_p50_ms"), ".3f"), num(s.get("step_p90_ms"), ".3f"), num(s.get("cold_load_ms"), ".1f"),
                         num(s.get("hop_ms"), "g"), num(s.get("real_time_factor"), ".4f"),
                         *(num(dev.get(d, {}).get(k), f) for d in devices for k, f in (("p50_ms", ".3f"), ("real_time_factor", ".4f")))])
    return rows


def streaming_lines(doc: dict[str, Any]) -> list[str]:
    """``## Streaming`` for the bench Markdown (none streamed: [])."""
    rows = streaming_rows(doc)
    if not rows:
        return []
    head = streaming_head(doc)
    return ["", "## Streaming (step module, state carried)", "", "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows), "", STREAMING_NOTE]


def coverage_lines(doc: dict[str, Any]) -> list[str]:
    """``## Op coverage`` for the bench Markdown: per ``--coverage`` cell, the ops its target does not run natively
    or in a delegate (none asked: [])."""
    from edgest.report.coverage import nodes_text

    cells = [c for c in doc.get("cells", []) if c.get("coverage")]
    if not cells:
        return []
    lines = ["", "## Op coverage", ""]
    for c in cells:
        cov = c["coverage"]
        nodes = nodes_text(cov.get("nodes") or {})
        gaps = "; ".join(cov.get("not_native") or []) or "every op native or delegated"
        what = f"{nodes}: {gaps}" if cov.get("status") == "known" else str(cov.get("status"))
        lines.append(f"- {c['model']} / {c['target']} / {c['precision']}: {what}")
    return lines
