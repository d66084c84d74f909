"""``report.md`` of one compile: verdict, weights, artifact, stage times, target details, passes and checks.

Every figure is explained where it is shown: which weights the model ran with (random initial
weights make task accuracy meaningless), how latency was measured and what "passed" means for it,
and, once device reports are merged (``edgest report merge``), each device's figures as a column
beside the host's. Rendering is a pure function of the report, so re-merging the same device
report rewrites the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgest.records import CheckResult, Report
from edgest.report.weights import weights_line

#: what "passed" means for latency, in every report that shows latency
LATENCY_MEANING = ('"passed" means measured: there is no latency limit unless a bench budget is given '
                   "(`edgest bench --max-latency-ms`).")


def _fmt(value: object, unit: str = "") -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}{unit}"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return ", ".join(_fmt(v) for v in value) + unit
    return f"{value}{unit}" if value not in (None, "") else "–"


def _empty(value: object) -> bool:
    """A figure with nothing in it (``[]``, ``{}``): a row of those says nothing and is left out."""
    return isinstance(value, (list, tuple, dict)) and not value


def task_note(metrics: dict[str, Any]) -> str:
    """Why the task drop is or is not judged (reports written before the note existed say only which)."""
    return metrics.get("task_note") or ("judged" if metrics.get("task_judged") else "not judged")


def _n(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``; '–' for a figure that is missing (null: not finite when written)."""
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def task_line(metrics: dict[str, Any], limits: dict[str, Any]) -> str:
    """One sentence on task top-1: eager, artifact, the drop, and whether it was judged and why."""
    m = metrics
    text = (f"Task top-1 on {m.get('task_set', 'the labelled set')}: eager {_n(m.get('task_top1_eager'), '.1%')}, "
            f"artifact {_n(m.get('task_top1'), '.1%')}, drop {_n(m.get('task_top1_drop_pts'), '.1f')} pt")
    text += (f" ({task_note(m)}). Top-1 agreement with eager: {_n(m.get('top1_agreement_inputs'), '.1%')} on the random inputs, "
             f"{_n(m.get('task_top1_agreement'), '.1%')} on the labelled samples, {_n(m.get('top1_agreement'), '.1%')} pooled "
             "(the judged figure).")
    if "sqnr_db_inputs" in m:  # reports before SQNR was pooled have only the two parts
        text += (f" SQNR: {_n(m['sqnr_db_inputs'], '.1f')} dB on the random inputs, {_n(m.get('task_sqnr_db'), '.1f')} dB on "
                 f"the labelled samples, {_n(m.get('sqnr_db'), '.1f')} dB pooled (judged).")
    return text


def sensitivity_table(sens: dict[str, Any], rows: int = 20) -> list[str]:
    """Markdown lines: per-layer int8 sensitivity, worst layer first (what to pass to --quant-skip)."""
    layers = sens.get("layers", [])
    lines = ["## Quantisation sensitivity (worst layers first)", "",
             f"All layers quantised: SQNR {_n(sens.get('sqnr_all_db'), '.1f')} dB, top-1 agreement "
             f"{_n(sens.get('top1_agreement_all'), '.0%')}, "
             f"on {sens['inputs']} inputs ({sens.get('measured_on', '')}). Method: {sens['method']}. "
             "Keep a layer float with `--quant-skip LAYER`.", "",
             "| rank | layer | layer SQNR (dB) | model SQNR if kept float (dB) | gain (dB) | top-1 agreement if float |",
             "|---|---|---|---|---|---|"]
    for i, r in enumerate(layers[:rows], 1):
        lines.append(f"| {i} | `{r['layer']}` | {_n(r.get('sqnr_db'), '.1f')} | {_n(r.get('sqnr_if_float_db'), '.1f')} | "
                     f"{_n(r.get('gain_db'), '+.1f')} | {_n(r.get('top1_agreement_if_float'), '.0%')} |")
    if len(layers) > rows:
        lines.append(f"\n{len(layers) - rows} more layers in report.json.")
    missed = sens.get("not_measured", [])
    if missed:
        names = ", ".join(f"`{r['layer']}`" for r in missed[:8]) + (f" and {len(missed) - 8} more" if len(missed) > 8 else "")
        lines.append(f"\nNot measured ({len(missed)} layers the quantizer could not keep float alone): {names}. "
                     f"First reason: {missed[0]['reason']}")
    return lines


def _cell_text(value: object, limit: int = 240) -> str:
    """A table cell: one line, pipes escaped, long values cut with a pointer to report.json."""
    text = _fmt(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "… (see report.json)"


def details_rows(details: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Target details as (name, value) rows: nested objects flattened to ``a.b``, lists of objects counted."""
    rows: list[tuple[str, str]] = []
    for key, value in details.items():
        name = f"{prefix}{key}"
        if key == "sensitivity" and isinstance(value, Mapping):
            rows.append((name, "see Quantisation sensitivity below"))
        elif isinstance(value, Mapping) and value:
            rows += details_rows(value, f"{name}.")
        elif isinstance(value, (list, tuple)) and value and not all(isinstance(v, (str, int, float)) for v in value):
            rows.append((name, f"{len(value)} entries (see report.json)"))
        elif isinstance(value, (list, tuple)) and value:
            rows.append((name, _cell_text(", ".join(_fmt(v) for v in value))))
        elif not _empty(value):
            rows.append((name, _cell_text(value)))
    return rows


def stage_line(stage_seconds: Mapping[str, float]) -> str:
    """``build 0.1 s · capture 0.6 s · … (total 10.1 s)``; '' when no stage was timed."""
    timed = {k: v for k, v in stage_seconds.items() if isinstance(v, (int, float))}
    if not timed:
        return ""
    return " · ".join(f"{k} {v:.1f} s" for k, v in timed.items()) + f" (total {sum(timed.values()):.1f} s)"


def protocol_sentence(metrics: Mapping[str, Any], limits: Mapping[str, Any]) -> str:
    """How a latency figure was measured: runs, warm-up, threads (and the minimums asked for)."""
    runs, warmup, threads = metrics.get("runs"), metrics.get("warmup", limits.get("warmup")), metrics.get("threads")
    text = "p50 and p90 of " + (f"{runs} timed runs" if runs is not None else "the timed runs")
    text += f" after {warmup} warm-up run{'s' if warmup != 1 else ''}" if warmup is not None else " after warm-up"
    text += f", {threads} thread{'s' if threads != 1 else ''}" if threads is not None else ""
    if "min_runs" in limits:
        text += f" (at least {limits['min_runs']} runs and {_fmt(limits.get('min_seconds', 0))} s)"
    return text


def _where(host: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in host.items() if k not in ("where", "name"))


def split_checks(checks: tuple[CheckResult, ...]) -> dict[str, tuple[CheckResult | None, dict[str, CheckResult]]]:
    """Per check kind: the host's check and each merged device's (by device name), in report order."""
    out: dict[str, tuple[CheckResult | None, dict[str, CheckResult]]] = {}
    for c in checks:
        host, devices = out.get(c.kind, (None, {}))
        if c.host.get("where") == "device":
            devices = {**devices, str(c.host.get("name", "device")): c}
        elif host is None:
            host = c
        out[c.kind] = (host, devices)
    return out


def _figure_table(host: CheckResult | None, devices: dict[str, CheckResult]) -> list[str]:
    """| metric | value | (host only), or | metric | host | dev… | once devices are merged; empty rows dropped."""
    columns = ([host] if host else []) + list(devices.values())
    keys = list(dict.fromkeys(k for c in columns for k in c.metrics))
    head = ["metric", "value"] if not devices else ["metric", *(["host"] if host else []), *devices]
    lines = []
    for k in keys:
        values = [c.metrics.get(k, []) for c in columns]
        if all(k not in c.metrics or _empty(c.metrics[k]) for c in columns):
            continue  # e.g. sustained_p50_ms: [] when no sustained run was asked for
        lines.append(f"| {k} | " + " | ".join("–" if _empty(v) else _cell_text(v) for v in values) + " |")
    if not lines:
        return []
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *lines]


def check_section(kind: str, host: CheckResult | None, devices: dict[str, CheckResult]) -> list[str]:
    """One ``## Accuracy`` / ``## Latency`` section: the host's figures with device columns beside them."""
    title = f"## {kind.capitalize()}: {host.status if host else 'not run on the host'}"
    title += "".join(f" · {name}: {c.status}" for name, c in devices.items())
    lines = ["", title, ""]
    for who, c in ([("", host)] if host else []) + [(f" on {n}", c) for n, c in devices.items()]:
        if c.reason:
            lines += [f"Reason{who}: {c.reason}", ""]
    table = _figure_table(host, devices)
    lines += table + ([""] if table else [])
    if kind == "latency":
        ran = [(n, c) for n, c in ([("the host", host)] if host else []) + list(devices.items()) if c.metrics]
        how = "; ".join(f"on {n}: {protocol_sentence(c.metrics, c.limits)}" for n, c in ran)
        lines += [f"Protocol: {how or 'not measured'}. {LATENCY_MEANING}", ""]
    else:
        for who, c in ([("", host)] if host else []) + [(f" on {n}", c) for n, c in devices.items()]:
            if c.limits and (not who or c.limits != (host.limits if host else None)):
                lines += [f"Limits{who}: " + ", ".join(f"{k} = {v}" for k, v in c.limits.items()), ""]
        if host and "task_top1" in host.metrics:
            lines += [task_line(host.metrics, host.limits), ""]
    if host and host.host:
        lines.append("Host: " + _where(host.host))
    lines += [f"Device {n}: " + _where(c.host) for n, c in devices.items()]
    return lines if lines[-1] else lines[:-1]


def _head(report: Report) -> list[str]:
    spec, art = report.model, report.artifact
    lines = [f"# edgest: {spec.name} → {report.target} ({report.precision})", "",
             f"**Status: {report.status}**" + (f" — {report.error}" if report.error else ""), "",
             f"- Model: `{spec.name}` ({spec.family}), input {'x'.join(map(str, spec.input.shape))} {spec.input.layout}"]
    if spec.paper:
        lines.append(f"- Paper: {spec.paper}")
    lines.append(f"- Weights: {weights_line(report.weights)}")
    if art:
        sha = f"sha256 `{art.sha256[:16]}…`" if art.sha256 else "no sha256 recorded"
        lines += [f"- Artifact: `{art.path}` ({art.format}, {art.size_bytes / 1e6:.2f} MB, {sha})",
                  f"- Compile time: {art.compile_seconds:.1f} s",
                  f"- Toolchain: {', '.join(f'{k} {v}' for k, v in art.toolchain.items())}"]
    stages = stage_line(report.stage_seconds)
    if stages:
        lines.append(f"- Time per stage: {stages}")
    if report.check("latency") is None:
        lines.append("- Latency: not measured in this run")
    return lines


def render_markdown(report: Report) -> str:
    """A short human report: verdict, weights, artifact, stage times, details, passes, checks with limits."""
    lines = _head(report)
    details = details_rows(report.artifact.details) if report.artifact else []
    if details:
        lines += ["", "## Target details", "", "| detail | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in details)]
    if report.passes:
        lines += ["", "## Passes", "", "| pass | modified | seconds | SQNR Δ (dB) | top-1 agreement | summary |", "|---|---|---|---|---|---|"]
        for p in report.passes:
            d = p.accuracy_delta or {}
            lines.append(
                f"| {p.name} | {p.modified} | {p.seconds:.2f} | {_fmt(d.get('sqnr_db'))} | {_fmt(d.get('top1_agreement'))} | {p.summary} |"
            )
    for p in report.passes:
        if p.details.get("sensitivity"):
            lines += ["", *sensitivity_table(p.details["sensitivity"])]
    for kind, (host, devices) in split_checks(report.checks).items():
        lines += check_section(kind, host, devices)
    from edgest.streaming.report import markdown_section

    lines += markdown_section(report)
    from edgest.report.coverage import report_section

    lines += report_section(report.coverage)
    lines += ["", f"_schema {report.schema_version}, created {report.created}_", ""]
    return "\n".join(lines)
