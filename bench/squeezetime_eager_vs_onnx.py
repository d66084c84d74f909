"""SqueezeTime (K400, 1x3x16x224x224): eager PyTorch vs ONNX Runtime, side by side, in one run.

Prints compile time, artifact size, accuracy vs eager and p50/p90 latency for each target,
measured with the same protocol edgest's checks use. Run: ``make bench`` or
``python bench/squeezetime_eager_vs_onnx.py [--threads N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

import edgest
from edgest.host import cpu_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="squeezetime")
    ap.add_argument("--targets", default="eager,onnx")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="edgest-bench-"))
    rows = []
    for target in args.targets.split(","):
        report = edgest.compile(args.model, target, out_dir=root / target, threads=args.threads, force=True)
        acc, lat = report.check("accuracy"), report.check("latency")
        rows.append({
            "target": target, "status": report.status,
            "compile_s": report.artifact.compile_seconds, "size_mb": report.artifact.size_bytes / 1e6,
            "sqnr_db": acc.metrics.get("sqnr_db"), "max_abs": acc.metrics.get("max_abs"),
            "p50_ms": lat.metrics.get("p50_ms"), "p90_ms": lat.metrics.get("p90_ms"),
            "cold_load_ms": lat.metrics.get("cold_load_ms"), "runs": lat.metrics.get("runs"),
        })
    table = Table(title=f"{args.model} {'x'.join(map(str, report.model.input.shape))}, {args.threads} thread(s), {cpu_model()}")
    for col in ("target", "status", "compile s", "size MB", "SQNR dB", "max abs", "p50 ms", "p90 ms", "cold load ms", "runs"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["target"], r["status"], f"{r['compile_s']:.1f}", f"{r['size_mb']:.1f}", f"{r['sqnr_db']:.1f}",
                      f"{r['max_abs']:.2e}", f"{r['p50_ms']:.1f}", f"{r['p90_ms']:.1f}", f"{r['cold_load_ms']:.0f}", str(r["runs"]))
    Console(width=160).print(table)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "threads": args.threads, "cpu": cpu_model(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
