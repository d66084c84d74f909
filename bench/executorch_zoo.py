"""ExecuTorch vs eager and ONNX Runtime over the model zoo: fp32 and int8 latency, sizes, int8 accuracy.

For each model, in one run and with the same protocol edgest's checks use (1 thread by
default): eager fp32 p50, ONNX Runtime fp32 p50, ExecuTorch fp32 p50 (XNNPACK, with the
target's rewrites), ExecuTorch int8 p50 (XNNPACK PT2E), .pte sizes, ET int8 vs eager speed-up,
ET fp32 / ORT fp32 ratio (issue 4's goal: ≤ 1.2), int8 SQNR and top-1 agreement vs eager.
The p50s and ratios in the table are re-timed in one process with the runtimes taking turns
(``edgest.checks.latency.measure_interleaved``, ``--rounds``), so load on a shared host falls on all
of them alike; each compile's own latency check (separate processes, one after another) is kept in
the JSON as ``p50_ms``.
``--baseline`` adds ExecuTorch fp32 without the rewrites (``xnnpack_rewrites=False``); ``--litert`` adds LiteRT
fp32 and int8 (``targets/litert``) with their ratios to ONNX Runtime fp32 and ExecuTorch int8.
Weights: ``--weights MODEL=FILE`` (trained, e.g. by ``edgest train``: task top-1 judged too), else the
model's init, except for models that ignore their input at it (EMOv2, spiking LMUFormer): responsive
stand-ins (:func:`edgest.testing.weights.bench_weights`), so their int8 accuracy can be judged.

Run: ``python bench/executorch_zoo.py --small`` (tiny variants, minutes) or
``python bench/executorch_zoo.py --models emov2_1m,vivit_fa_ti`` (full configs; the default is
every full config in the zoo, which takes hours on a laptop CPU).
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
from edgest.checks.retime import Compiled, retime
from edgest.host import cpu_model
from edgest.plugins import get_registry
from edgest.testing.weights import BenchWeights, bench_weights

#: (column key, target, precision, target options)
RUNS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("eager", "eager", "fp32", {}),
    ("ort", "onnx", "fp32", {}),
    ("et", "executorch", "fp32", {}),
    ("et_int8", "executorch", "int8", {}),
)
BASELINE = ("et_plain", "executorch", "fp32", {"xnnpack_rewrites": False})
#: ``--litert``: LiteRT (litert-torch conversion, interpreter with XNNPACK) fp32 and int8 (PT2E) beside them
LITERT: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("lrt", "litert", "fp32", {}),
    ("lrt_int8", "litert", "int8", {}),
)


def runs(baseline: bool, litert: bool) -> tuple[tuple[str, str, str, dict[str, Any]], ...]:
    """The (column, target, precision, options) runs a row compiles."""
    return RUNS + ((BASELINE,) if baseline else ()) + (LITERT if litert else ())


def zoo(small: bool) -> list[str]:
    """Model names of the zoo: the tiny test variants, or the full configs."""
    names = sorted(get_registry().models)
    return [n for n in names if ("tiny" in n) == small]


def bench_model(model: str, root: Path, threads: int, plan: tuple[tuple[str, str, str, dict[str, Any]], ...],
                weights: BenchWeights) -> dict[str, Any]:
    """Compile ``model`` for every run and collect the figures of one table row; a task set is run
    only on trained weights."""
    row: dict[str, Any] = {"model": model, "weights": weights.label}
    for key, target, precision, options in plan:
        try:
            report = edgest.compile(model, target, out_dir=root / model / key, precision=precision, threads=threads,
                                    target_options=options, weights=weights.path, task_samples=None if weights.trained else 0,
                                    force=True)
        except edgest.EdgestError as exc:
            row[key] = {"status": "error", "error": str(exc)}
            continue
        acc, lat = report.check("accuracy"), report.check("latency")
        row[key] = {
            "status": report.status, "error": report.error,
            "p50_ms": lat.metrics.get("p50_ms") if lat else None,
            "size_mb": report.artifact.size_bytes / 1e6,
            "sqnr_db": acc.metrics.get("sqnr_db") if acc else None,
            "top1_agreement": acc.metrics.get("top1_agreement") if acc else None,
            "task_top1_drop_pts": acc.metrics.get("task_top1_drop_pts") if acc else None,
            "non_delegated_ops": report.artifact.details.get("non_delegated_ops"),
            "artifact": report.artifact.path, "input_shape": list(report.model.input.shape),
        }
    return row


def retime_row(row: dict[str, Any], root: Path, threads: int, rounds: int) -> dict[str, Any]:
    """Time the row's artifacts again in turns in this process; ratios from those p50s."""
    artifacts = {key: Compiled(target, root / row["model"] / key / row[key]["artifact"], tuple(row[key]["input_shape"]),
                               options)
                 for key, target, _, options in RUNS + (BASELINE,) + LITERT
                 if row.get(key, {}).get("status", "error") != "error"}
    for key, stats in retime(artifacts, threads, rounds).items():
        row[key]["p50_interleaved_ms"] = stats["p50_ms"]
    p50 = {k: (v or {}).get("p50_interleaved_ms") for k, v in row.items() if isinstance(v, dict)}
    if p50.get("et") and p50.get("ort"):
        row["et_over_ort"] = p50["et"] / p50["ort"]
    if p50.get("et_int8") and p50.get("eager"):
        row["eager_over_et_int8"] = p50["eager"] / p50["et_int8"]
    if p50.get("et_int8") and p50.get("ort"):
        row["ort_over_et_int8"] = p50["ort"] / p50["et_int8"]
    if p50.get("lrt") and p50.get("ort"):
        row["lrt_over_ort"] = p50["lrt"] / p50["ort"]
    if p50.get("lrt_int8") and p50.get("et_int8"):
        row["lrt_int8_over_et_int8"] = p50["lrt_int8"] / p50["et_int8"]
    return row


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def table(rows: list[dict[str, Any]], threads: int, baseline: bool, litert: bool = False) -> Table:
    t = Table(title=f"ExecuTorch over the zoo, {threads} thread(s), {cpu_model()}")
    cols = ["model", "eager ms", "ORT fp32 ms", "ET fp32 ms"] + (["ET fp32 plain ms"] if baseline else [])
    cols += ["ET int8 ms", "pte fp32 MB", "pte int8 MB", "ET/ORT", "eager/ET int8", "ORT/ET int8",
             "int8 SQNR dB", "int8 top-1", "int8 status"]
    cols += ["LRT fp32 ms", "LRT int8 ms", "LRT/ORT", "LRT int8/ET int8", "LRT int8 SQNR dB", "LRT int8 status"] if litert else []
    for c in cols:
        t.add_column(c)
    for r in rows:
        def g(key: str, metric: str, r: dict[str, Any] = r) -> Any:
            return (r.get(key) or {}).get(metric)

        p50 = "p50_interleaved_ms"
        cells = [r["model"], _f(g("eager", p50), ".2f"), _f(g("ort", p50), ".2f"), _f(g("et", p50), ".2f")]
        cells += [_f(g("et_plain", p50), ".2f")] if baseline else []
        top1 = g("et_int8", "top1_agreement")
        cells += [_f(g("et_int8", p50), ".2f"), _f(g("et", "size_mb"), ".2f"), _f(g("et_int8", "size_mb"), ".2f"),
                  _f(r.get("et_over_ort"), ".2f"), _f(r.get("eager_over_et_int8"), ".2f"), _f(r.get("ort_over_et_int8"), ".2f"),
                  _f(g("et_int8", "sqnr_db"), ".1f"), "-" if top1 is None else f"{100 * top1:.0f}%",
                  str(g("et_int8", "status"))]
        cells += [_f(g("lrt", p50), ".2f"), _f(g("lrt_int8", p50), ".2f"), _f(r.get("lrt_over_ort"), ".2f"),
                  _f(r.get("lrt_int8_over_et_int8"), ".2f"), _f(g("lrt_int8", "sqnr_db"), ".1f"),
                  str(g("lrt_int8", "status"))] if litert else []
        t.add_row(*cells)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated zoo names (default: every full config)")
    ap.add_argument("--small", action="store_true", help="the tiny variants instead of the full configs")
    ap.add_argument("--baseline", action="store_true", help="also ExecuTorch fp32 without the XNNPACK rewrites")
    ap.add_argument("--litert", action="store_true", help="also LiteRT fp32 and int8 (targets/litert)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="turns of the interleaved re-timing")
    ap.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    ap.add_argument("--weights", action="append", default=[], help="MODEL=FILE, repeatable (trained checkpoints)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    models = args.models.split(",") if args.models else zoo(args.small)
    root = args.out or Path(tempfile.mkdtemp(prefix="edgest-bench-et-"))
    weights = bench_weights(models, dict(w.split("=", 1) for w in args.weights), root / "weights")
    console = Console(width=200)
    rows = []
    for model in models:
        row = bench_model(model, root, args.threads, runs(args.baseline, args.litert), weights[model])
        rows.append(retime_row(row, root, args.threads, args.rounds))
        console.print(f"{model}: done ({root / model})")
        if args.json:  # after every model: a long run that is stopped still leaves its figures
            args.json.write_text(json.dumps({"threads": args.threads, "cpu": cpu_model(), "rows": rows}, indent=2))
    console.print(table(rows, args.threads, args.baseline, args.litert))
    for r in rows:
        for key, v in r.items():
            if isinstance(v, dict) and v.get("status") not in ("passed", None):
                console.print(f"{r['model']} {key}: {v['status']}: {v.get('error')}")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "cpu": cpu_model(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
