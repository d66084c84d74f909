"""Write a :class:`~edgest.records.Report` as ``report.json`` and ``report.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgest.errors import BadInput
from edgest.records import SCHEMA_VERSION, Report


def write_reports(report: Report, folder: Path) -> None:
    """Write ``report.json`` and ``report.md`` into ``folder``."""
    (folder / "report.json").write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    (folder / "report.md").write_text(render_markdown(report))


def read_json(path: Path) -> Report:
    """Read a ``report.json``; BadInput if it is not one or its schema is newer than ours."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read report '{path}': {exc}") from None
    major = str(data.get("schema_version", "")).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise BadInput(f"report '{path}' has schema {data.get('schema_version')!r}; this edgest reads {SCHEMA_VERSION}")
    return Report.from_dict(data)


def _fmt(value: object, unit: str = "") -> str:
    if isinstance(value, float):
        return f"{value:.4g}{unit}"
    return f"{value}{unit}" if value not in (None, "") else "–"


def task_note(metrics: dict[str, Any]) -> str:
    """Why the task drop is or is not judged (reports written before the note existed say only which)."""
    return metrics.get("task_note") or ("judged" if metrics.get("task_judged") else "not judged")


def task_line(metrics: dict[str, Any], limits: dict[str, Any]) -> str:
    """One sentence on task top-1: eager, artifact, the drop, and whether it was judged and why."""
    m = metrics
    text = (f"Task top-1 on {m.get('task_set', 'the labelled set')}: eager {m['task_top1_eager']:.1%}, "
            f"artifact {m['task_top1']:.1%}, drop {m['task_top1_drop_pts']:.1f} pt")
    text += (f" ({task_note(m)}). Top-1 agreement with eager: {m['top1_agreement_inputs']:.1%} on the random inputs, "
             f"{m['task_top1_agreement']:.1%} on the labelled samples, {m['top1_agreement']:.1%} pooled (the judged figure).")
    if "sqnr_db_inputs" in m:  # reports before SQNR was pooled have only the two parts
        text += (f" SQNR: {m['sqnr_db_inputs']:.1f} dB on the random inputs, {m['task_sqnr_db']:.1f} dB on the labelled "
                 f"samples, {m['sqnr_db']:.1f} dB pooled (judged).")
    return text


def sensitivity_table(sens: dict[str, Any], rows: int = 20) -> list[str]:
    """Markdown lines: per-layer int8 sensitivity, worst layer first (what to pass to --quant-skip)."""
    layers = sens.get("layers", [])
    lines = ["## Quantisation sensitivity (worst layers first)", "",
             f"All layers quantised: SQNR {sens['sqnr_all_db']:.1f} dB, top-1 agreement {sens['top1_agreement_all']:.0%}, "
             f"on {sens['inputs']} inputs ({sens.get('measured_on', '')}). Method: {sens['method']}. "
             "Keep a layer float with `--quant-skip LAYER`.", "",
             "| rank | layer | layer SQNR (dB) | model SQNR if kept float (dB) | gain (dB) | top-1 agreement if float |",
             "|---|---|---|---|---|---|"]
    for i, r in enumerate(layers[:rows], 1):
        lines.append(f"| {i} | `{r['layer']}` | {r['sqnr_db']:.1f} | {r['sqnr_if_float_db']:.1f} | {r['gain_db']:+.1f} | "
                     f"{r['top1_agreement_if_float']:.0%} |")
    if len(layers) > rows:
        lines.append(f"\n{len(layers) - rows} more layers in report.json.")
    missed = sens.get("not_measured", [])
    if missed:
        names = ", ".join(f"`{r['layer']}`" for r in missed[:8]) + (f" and {len(missed) - 8} more" if len(missed) > 8 else "")
        lines.append(f"\nNot measured ({len(missed)} layers the quantizer could not keep float alone): {names}. "
                     f"First reason: {missed[0]['reason']}")
    return lines


def render_markdown(report: Report) -> str:
    """A short human report: verdict, artifact, passes, checks with limits."""
    spec, art = report.model, report.artifact
    lines = [
        f"# edgest: {spec.name} → {report.target} ({report.precision})",
        "",
        f"**Status: {report.status}**" + (f" — {report.error}" if report.error else ""),
        "",
        f"- Model: `{spec.name}` ({spec.family}), input {'x'.join(map(str, spec.input.shape))} {spec.input.layout}",
    ]
    if spec.paper:
        lines.append(f"- Paper: {spec.paper}")
    if art:
        lines += [
            f"- Artifact: `{art.path}` ({art.format}, {art.size_bytes / 1e6:.2f} MB, sha256 `{art.sha256[:16]}…`)",
            f"- Compile time: {art.compile_seconds:.1f} s",
            f"- Toolchain: {', '.join(f'{k} {v}' for k, v in art.toolchain.items())}",
        ]
        if art.details:
            lines.append(f"- Details: {', '.join(f'{k}={v}' for k, v in art.details.items())}")
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
    for check in report.checks:
        lines += ["", f"## {check.kind.capitalize()}: {check.status}", ""]
        if check.reason:
            lines += [f"Reason: {check.reason}", ""]
        if check.metrics:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in check.metrics.items()]
        if check.limits:
            lines += ["", "Limits: " + ", ".join(f"{k} = {v}" for k, v in check.limits.items())]
        if check.kind == "accuracy" and "task_top1" in check.metrics:
            lines += ["", task_line(check.metrics, check.limits)]
        if check.host:
            lines += ["", "Host: " + ", ".join(f"{k}: {v}" for k, v in check.host.items())]
    lines += ["", f"_schema {report.schema_version}, created {report.created}_", ""]
    return "\n".join(lines)
