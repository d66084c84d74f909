"""Core ML over the zoo's full configs: every model converted (fp16 by default) and checked through the
MIL reference interpreter off macOS (Core ML's own runtime on a Mac).

Per model: status, SQNR and top-1 agreement against eager fp32 with the limits used, the package's size,
MIL op count and conversion time. Latency is not measured off macOS (the device bundle measures it on a
Mac or iPhone). Models that ignore their input at their papers' init (EMOv2, spiking LMUFormer) run on
responsive stand-in weights (:func:`edgest.testing.weights.bench_weights`), or pass ``--weights MODEL=FILE``:
trained weights also run the compile's labelled samples, and the figures are pooled as the compile's are.

``python bench/coreml_zoo.py [--models squeezetime,vivit_fa_ti] [--precision fp16] [--samples 2] [--json out.json]``
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


def full_zoo() -> list[str]:
    """The zoo's full configs (every model that is not a tiny test variant)."""
    return sorted(n for n in get_registry().models if "tiny" not in n)


def bench_model(model: str, weights: BenchWeights, out: Path, precision: str, samples: int) -> dict[str, Any]:
    """Convert ``model`` and check it; one row of figures."""
    row: dict[str, Any] = {"model": model, "weights": weights.label}
    try:
        report = edgest.compile(model, "coreml", out_dir=out / model, precision=precision, weights=weights.path,
                                samples=samples, task_samples=None if weights.trained else 0, latency=None, force=True)
    except edgest.EdgestError as exc:
        return {**row, "status": "error", "error": str(exc)[:200]}
    acc = report.check("accuracy")
    m = acc.metrics if acc else {}
    details = report.artifact.details if report.artifact else {}
    return {**row, "status": acc.status if acc else report.status, "reason": (acc.reason if acc else report.error)[:200],
            "runtime": (acc.host if acc else {}).get("runtime", ""), "sqnr_db": m.get("sqnr_db"),
            "top1_agreement": m.get("top1_agreement"), "max_abs": m.get("max_abs"),
            "limits": acc.limits if acc else {}, "size_mb": report.artifact.size_bytes / 1e6 if report.artifact else None,
            "mil_ops": (details.get("mil_ops") or {}).get("non_const"), "compile_s": report.artifact.compile_seconds if report.artifact else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated zoo names (default: every full config)")
    ap.add_argument("--precision", default="fp16", choices=("fp16", "fp32"))
    ap.add_argument("--samples", type=int, default=2, help="random inputs per model (the interpreter is NumPy)")
    ap.add_argument("--weights", action="append", default=[], help="MODEL=FILE, repeatable (trained checkpoints)")
    ap.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON (after every model)")
    args = ap.parse_args()
    models = args.models.split(",") if args.models else full_zoo()
    root = args.out or Path(tempfile.mkdtemp(prefix="edgest-bench-coreml-"))
    weights = bench_weights(models, dict(w.split("=", 1) for w in args.weights), root / "weights")
    console = Console(width=200)
    rows = []
    for model in models:
        rows.append(bench_model(model, weights[model], root, args.precision, args.samples))
        r = rows[-1]
        console.print(f"{model}: {r['status']} {r.get('sqnr_db') or ''} {r.get('reason') or r.get('error', '')}")
        if args.json:
            args.json.write_text(json.dumps({"cpu": cpu_model(), "precision": args.precision, "rows": rows}, indent=2))
    table = Table(title=f"Core ML {args.precision} over the zoo, checked off macOS by the MIL reference ({cpu_model()})")
    for col in ("model", "weights", "status", "SQNR dB", "top-1 agree", "MB", "MIL ops (non-const)", "convert s"):
        table.add_column(col)
    for r in rows:
        f = (lambda v, fmt: "-" if v is None else format(v, fmt))
        table.add_row(r["model"], r["weights"], r["status"], f(r.get("sqnr_db"), ".1f"), f(r.get("top1_agreement"), ".0%"),
                      f(r.get("size_mb"), ".1f"), str(r.get("mil_ops") or "-"), f(r.get("compile_s"), ".0f"))
    console.print(table)


if __name__ == "__main__":
    main()
