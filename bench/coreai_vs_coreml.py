"""Core AI vs Core ML over the zoo, side by side: the same models through both of Apple's converters.

Core ML (coremltools, ``.mlpackage``) is checked off macOS by edgest's MIL reference interpreter;
Core AI (coreai-torch, ``.aimodel``) by Apple's own runtime, whose x86-64 build ships in
``coreai-core``. Per model and precision (fp16, bf16, int8; Core ML has no bf16): whether it
converted (the op named when it did not), SQNR against eager fp32, artifact size and conversion
time (the ``lower`` stage; int8 adds the ``passes`` stage, where the quantize pass calibrates and quantises). Latency is
not measured: neither runtime's speed on this host says anything about Apple hardware.

Models that ignore their input at their papers' init (EMOv2, spiking LMUFormer) run on responsive
stand-in weights (:func:`edgest.testing.weights.bench_weights`), as in ``bench/coreml_zoo.py``.

``python bench/coreai_vs_coreml.py [--models tiny|full|a,b] [--precisions fp16,bf16,int8] [--targets coreml,coreai]
[--samples 2] [--json out.json] [--markdown out.md]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import edgest
from edgest.host import cpu_model
from edgest.plugins import get_registry
from edgest.testing.weights import BenchWeights, bench_weights

#: what each target can build (Core ML: no bf16)
BUILDS = {"coreml": ("fp32", "fp16", "int8"), "coreai": ("fp32", "fp16", "bf16", "int8")}


def zoo(which: str) -> list[str]:
    """``tiny`` (the test variants), ``full`` (the papers' configs) or a comma-separated list of names."""
    names = sorted(n for n in get_registry().models if not n.startswith("example_"))
    if which == "tiny":
        return [n for n in names if "tiny" in n]
    if which == "full":
        return [n for n in names if "tiny" not in n]
    return which.split(",")


def cell(model: str, target: str, precision: str, weights: BenchWeights, out: Path, samples: int) -> dict[str, Any]:
    """Compile ``model`` for ``target`` at ``precision`` and check it; one cell of figures."""
    if precision not in BUILDS[target]:
        return {"status": "n/a", "error": f"{target} has no {precision}"}
    try:
        report = edgest.compile(model, target, out_dir=out / f"{model}-{target}-{precision}", precision=precision,
                                weights=weights.path, samples=samples, task_samples=None if weights.trained else 0,
                                latency=None, force=True)
    except edgest.EdgestError as exc:
        return {"status": "error", "error": str(exc).splitlines()[0][:300]}
    acc = report.check("accuracy")
    m = acc.metrics if acc else {}
    stages = report.stage_seconds or {}
    return {"status": acc.status if acc else report.status, "reason": (acc.reason if acc else report.error or "")[:200],
            "runtime": (acc.host if acc else {}).get("runtime", ""), "sqnr_db": m.get("sqnr_db"),
            "top1_agreement": m.get("top1_agreement"), "size_mb": report.artifact.size_bytes / 1e6,
            "convert_s": stages.get("lower", 0.0) + stages.get("passes", 0.0)}


def _fmt(c: dict[str, Any]) -> str:
    if c["status"] == "n/a":
        return "n/a"
    if c["status"] == "error":
        return f"fails: {c['error'][:120]}"
    sqnr = "-" if c.get("sqnr_db") is None else f"{c['sqnr_db']:.1f} dB"
    return f"{sqnr}, {c['size_mb']:.2f} MB, {c['convert_s']:.1f} s" + ("" if c["status"] == "passed" else f" ({c['status']})")


def table_rows(rows: list[dict[str, Any]], targets: list[str], precisions: list[str]) -> list[list[str]]:
    """One row per model: its name, then one formatted cell per (target, precision)."""
    return [[r["model"], r["weights"], *(_fmt(r["cells"][f"{t}/{p}"]) for t in targets for p in precisions)] for r in rows]


def markdown(rows: list[dict[str, Any]], targets: list[str], precisions: list[str], title: str) -> str:
    """The table as Markdown (each cell: SQNR vs eager fp32, artifact size, conversion time; or why it failed)."""
    head = ["model", "weights", *(f"{t} {p}" for t in targets for p in precisions)]
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows, targets, precisions)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="tiny", help="tiny, full, or comma-separated zoo names")
    ap.add_argument("--precisions", default="fp16,bf16,int8")
    ap.add_argument("--targets", default="coreml,coreai")
    ap.add_argument("--samples", type=int, default=2, help="random inputs per model (the MIL reference is NumPy)")
    ap.add_argument("--weights", action="append", default=[], help="MODEL=FILE, repeatable (trained checkpoints)")
    ap.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON (after every model)")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table as Markdown")
    args = ap.parse_args()
    models, targets, precisions = zoo(args.models), args.targets.split(","), args.precisions.split(",")
    root = args.out or Path(tempfile.mkdtemp(prefix="edgest-bench-coreai-"))
    weights = bench_weights(models, dict(w.split("=", 1) for w in args.weights), root / "weights")
    console, rows = Console(width=240), []
    for model in models:
        cells = {f"{t}/{p}": cell(model, t, p, weights[model], root, args.samples) for t in targets for p in precisions}
        rows.append({"model": model, "weights": weights[model].label, "cells": cells})
        console.print(f"{model}: " + "; ".join(f"{k} {_fmt(c)}" for k, c in cells.items()))
        if args.json:
            args.json.write_text(json.dumps({"cpu": cpu_model(), "rows": rows}, indent=2))
    title = (f"Core ML (MIL reference) vs Core AI (Apple's runtime, host build) — SQNR vs eager fp32, size, "
             f"conversion time; {args.samples} random inputs; {cpu_model()}")
    table = Table(title=title)
    for col in ("model", "weights", *(f"{t} {p}" for t in targets for p in precisions)):
        table.add_column(col)
    for cells in table_rows(rows, targets, precisions):
        table.add_row(*cells)
    console.print(table)
    if args.markdown:
        args.markdown.write_text(markdown(rows, targets, precisions, title))


if __name__ == "__main__":
    main()
