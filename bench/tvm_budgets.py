"""What MetaSchedule tuning buys TVM on this CPU: eager, ONNX Runtime, TVM untuned and tuned at two budgets, ExecuTorch.

One run, one process, same protocol as edgest's checks (1 thread by default): for each zoo
model, p50/p90 latency, SQNR vs eager and compile seconds per runtime, plus MetaSchedule's
tuning seconds for the tuned TVM rows. A budget of N trials tunes the N/16 heaviest kernels
(see ``edgest_tvm.compiler.tune``). Every tuned compile starts from an empty database
(``tuning/`` next to its artifact; the run folder is removed first), so its tuning time is
the whole cost of that budget. Small zoo variants by default, ``--full`` for the full configs.

    python bench/tvm_budgets.py                                   # tiny models, budgets 64 and 256
    python bench/tvm_budgets.py --models squeezetime_tiny,vivit_fa_tiny --budgets 32,128   # ~20 min here
    python bench/tvm_budgets.py --models squeezetime_tiny,vivit_fa_tiny --budgets 32,128 --json out.json
    python bench/tvm_budgets.py --full --models squeezetime        # full SqueezeTime (long)
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import edgest
from edgest.host import cpu_model

SMALL = "squeezetime_tiny,emov2_tiny_video,vivit_fa_tiny"
FULL = "squeezetime,emov2_1m_video,vivit_fa_ti"
RUNTIMES = ("eager", "onnx", "executorch")


def _cell(model: str, target: str, label: str, root: Path, threads: int, samples: int,
          options: dict[str, Any] | None = None) -> dict[str, Any]:
    out = root / model / label
    shutil.rmtree(out, ignore_errors=True)  # a tuned cell must not reuse an earlier run's tuning/
    row: dict[str, Any] = {"model": model, "runtime": label}
    try:
        report = edgest.compile(model, target, out_dir=out, threads=threads, samples=samples, force=True,
                                target_options=options)
    except edgest.EdgestError as exc:
        return {**row, "status": "error", "error": str(exc)}
    acc, lat = report.check("accuracy"), report.check("latency")
    tuned = report.artifact.details.get("tuned") or {}
    return {
        **row, "status": report.status, "error": report.error,
        "p50_ms": lat.metrics.get("p50_ms") if lat else None, "p90_ms": lat.metrics.get("p90_ms") if lat else None,
        "runs": lat.metrics.get("runs") if lat else None, "sqnr_db": acc.metrics.get("sqnr_db") if acc else None,
        "compile_s": report.artifact.compile_seconds, "trials": tuned.get("trials", 0),
        "tune_s": tuned.get("seconds"), "tasks": tuned.get("tasks"), "tasks_tuned": tuned.get("tasks_tuned_now"),
        "kernels_from_tuning_db": report.artifact.details.get("kernels_from_tuning_db"),
    }


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help=f"comma-separated zoo models (default {SMALL}; --full: {FULL})")
    ap.add_argument("--full", action="store_true", help="full-size zoo configs instead of the tiny variants")
    ap.add_argument("--budgets", default="64,256", help="MetaSchedule trial budgets (comma-separated)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", type=int, default=4, help="random inputs for each accuracy check")
    ap.add_argument("--skip", default="", help="runtimes to leave out, e.g. executorch")
    ap.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    models = (args.models or (FULL if args.full else SMALL)).split(",")
    budgets = [int(b) for b in args.budgets.split(",") if b]
    skip = set(filter(None, args.skip.split(",")))
    root = args.out or Path(tempfile.mkdtemp(prefix="edgest-tvm-budgets-"))
    console = Console(width=170)

    rows = []
    for model in models:
        plan: list[tuple[str, str, dict[str, Any] | None]] = [(t, t, None) for t in RUNTIMES if t not in skip]
        plan.append(("tvm", "tvm", None))
        plan += [("tvm", f"tvm-tuned-{b}", {"tune_trials": b}) for b in budgets]
        for target, label, options in plan:
            console.print(f"[dim]{model} / {label} …[/dim]")
            rows.append(_cell(model, target, label, root, args.threads, args.samples, options))
            r = rows[-1]
            console.print(f"[dim]  {r['status']}: p50 {_fmt(r.get('p50_ms'), '.3f')} ms, tune {_fmt(r.get('tune_s'), '.0f')} s[/dim]")

    table = Table(title=f"TVM tuning budgets, {args.threads} thread(s), {cpu_model()}")
    for col in ("model", "runtime", "status", "p50 ms", "p90 ms", "vs TVM untuned", "SQNR dB", "compile s",
                "tune s", "tasks tuned/all"):
        table.add_column(col)
    base = {r["model"]: r.get("p50_ms") for r in rows if r["runtime"] == "tvm"}
    for r in rows:
        ratio = base.get(r["model"]) / r["p50_ms"] if base.get(r["model"]) and r.get("p50_ms") else None
        table.add_row(r["model"], r["runtime"], r["status"], _fmt(r.get("p50_ms"), ".3f"), _fmt(r.get("p90_ms"), ".3f"),
                      _fmt(ratio, ".2f") + ("x" if ratio else ""), _fmt(r.get("sqnr_db"), ".1f"),
                      _fmt(r.get("compile_s"), ".1f"), _fmt(r.get("tune_s"), ".0f"),
                      f"{r['tasks_tuned']}/{r['tasks']}" if r.get("tasks") else "-")
    console.print(table)
    for r in rows:
        if r["status"] not in ("passed",):
            console.print(f"{r['model']} / {r['runtime']}: {r['status']}: {r.get('error', '')}")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "cpu": cpu_model(), "budgets": budgets,
                                         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
