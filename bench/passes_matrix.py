"""What the passes buy per zoo model and target: int8 vs fp32 (p50, size, accuracy) and attention-to-conv on vs off.

For every model (small variants by default, ``--full`` for the full configs) and target
(onnx, executorch, tvm by default) it compiles, through the public ``edgest.compile``:

* fp32, and int8 (``--precision int8``) where the target offers it;
* fp32 with ``--pass attention-to-conv`` for models with attention (ViViT, EMOv2).

Each cell is one ordinary compile with its accuracy and latency checks (same protocol as
``edgest compile``); a model and target's cells are then timed again in turns in one process
(``edgest.checks.retime``), and those p50s are the table's. With ``--weights MODEL=FILE`` (e.g. from ``edgest train``) the labelled
task set is judged too; without, a model keeps its init, except EMOv2 and spiking LMUFormer, which ignore
their input at their papers' init and run on responsive stand-ins (:func:`edgest.testing.weights.bench_weights`:
layer scales at 1, calibrated BNs), with no task set. Run folders go under ``--out``.

    python bench/passes_matrix.py                       # small variants (~40 cells, about a minute each)
    python bench/passes_matrix.py --full --threads 4    # full configs (long)
    python bench/passes_matrix.py --models squeezetime_tiny --targets onnx --json out.json
    python bench/passes_matrix.py --from-json out.json  # print the tables of an earlier (or stopped) run
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
from edgest.testing.weights import bench_weights

SMALL = ("squeezetime_tiny", "vivit_fa_tiny", "emov2_tiny_video", "vivit_fe_tiny", "lmuformer_video_tiny")
FULL = ("squeezetime", "emov2_1m_video", "vivit_fa_ti", "vivit_fe_ti", "lmuformer_video")
ATTENTION_FAMILIES = ("vivit", "emov2")
TARGETS = ("onnx", "executorch", "tvm")


def has_attention(model: str) -> bool:
    """Models whose blocks attention-to-conv rewrites (ViViT and EMOv2 families)."""
    return model.startswith(ATTENTION_FAMILIES)


def run_cell(model: str, target: str, precision: str, passes: list[str], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One compile; a failure or unsupported combination becomes a row with the reason."""
    row: dict[str, Any] = {"model": model, "target": target, "precision": precision, "passes": "+".join(passes) or "-"}
    folder = out / f"{model}__{target}__{precision}{'__' + '+'.join(passes) if passes else ''}"
    try:
        weights = args.weights[model]
        report = edgest.compile(model, target, passes=passes, precision=precision, weights=weights.path,
                                out_dir=folder, threads=args.threads, samples=args.samples,
                                task_samples=args.task_samples if weights.trained else 0, force=True)
    except edgest.EdgestError as exc:
        return {**row, "status": "error", "error": str(exc)[:160]}
    acc, lat = report.check("accuracy"), report.check("latency")
    am, lm = (acc.metrics if acc else {}), (lat.metrics if lat else {})
    return {**row, "weights": weights.label, "status": report.status, "error": report.error[:160],
            "size_bytes": report.artifact.size_bytes,
            "p50_ms": lm.get("p50_ms"), "p90_ms": lm.get("p90_ms"), "sqnr_db": am.get("sqnr_db"),
            "top1_agreement": am.get("top1_agreement"), "task_top1": am.get("task_top1"),
            "task_top1_drop_pts": am.get("task_top1_drop_pts"), "compile_s": report.artifact.compile_seconds,
            "artifact": str(folder / report.artifact.path), "input_shape": list(report.model.input.shape)}


def retime_cells(rows: list[dict[str, Any]], threads: int, rounds: int) -> None:
    """One model and target's cells timed again in turns in this process (``p50_ms``; the compile's
    own check, run apart from the others, stays as ``p50_check_ms``)."""
    cells = {i: r for i, r in enumerate(rows) if r.get("artifact")}
    stats = retime({i: Compiled(r["target"], Path(r["artifact"]), tuple(r["input_shape"])) for i, r in cells.items()},
                   threads, rounds)
    for i, r in cells.items():
        r["p50_check_ms"], r["p50_ms"] = r["p50_ms"], stats[i]["p50_ms"]


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and target: int8 vs fp32 and attention-to-conv vs plain, as ratios of p50 and size."""
    by = {(r["model"], r["target"], r["precision"], r["passes"]): r for r in rows}
    out = []
    for (model, target, precision, passes), r in by.items():
        if precision != "fp32" or passes != "-":
            continue
        q = by.get((model, target, "int8", "-"), {})
        a = by.get((model, target, "fp32", "attention-to-conv"), {})
        out.append({
            "model": model, "target": target, "fp32_p50_ms": r.get("p50_ms"), "int8_p50_ms": q.get("p50_ms"),
            "fp32_mb": _mb(r.get("size_bytes")), "int8_mb": _mb(q.get("size_bytes")),
            "int8_sqnr_db": q.get("sqnr_db"), "int8_top1_agreement": q.get("top1_agreement"),
            "int8_task_drop_pts": q.get("task_top1_drop_pts"), "int8_status": q.get("status", "-"),
            "a2c_p50_ms": a.get("p50_ms"), "a2c_status": a.get("status", "-"),
        })
    return out


def _mb(v: Any) -> float | None:
    return v / 1e6 if isinstance(v, (int, float)) else None


def _f(v: Any, fmt: str = ".2f") -> str:
    return format(v, fmt) if isinstance(v, (int, float)) else "-"


def markdown(summary: list[dict[str, Any]]) -> str:
    """The summary as a Markdown table (what goes into a README or report)."""
    head = ["model", "target", "fp32 p50 ms", "int8 p50 ms", "fp32 MB", "int8 MB", "int8 SQNR dB", "int8 top-1 agree",
            "int8 task drop pt", "a2c p50 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        int8 = s["int8_status"] not in ("-", "passed") and s["int8_p50_ms"] is None
        lines.append("| " + " | ".join([
            s["model"], s["target"], _f(s["fp32_p50_ms"]), "n/a" if int8 else _f(s["int8_p50_ms"]), _f(s["fp32_mb"]),
            _f(s["int8_mb"]), _f(s["int8_sqnr_db"], ".1f"),
            _f(s["int8_top1_agreement"] * 100 if s["int8_top1_agreement"] is not None else None, ".0f"),
            _f(s["int8_task_drop_pts"], ".1f"), _f(s["a2c_p50_ms"])]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="full configs instead of the small variants")
    ap.add_argument("--models", help="comma-separated models (default: the small or full set)")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="turns of the interleaved re-timing of each model and target")
    ap.add_argument("--samples", type=int, default=8, help="random inputs for the accuracy check")
    ap.add_argument("--task-samples", type=int, default=None,
                    help="labelled clips for task top-1 with trained weights (default: edgest's, 256; 0: off)")
    ap.add_argument("--weights", action="append", default=[], help="MODEL=FILE, repeatable (trained checkpoints)")
    ap.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    ap.add_argument("--json", type=Path, default=None, help="also write rows and summary as JSON")
    ap.add_argument("--from-json", type=Path, default=None, help="only print the tables of a JSON an earlier run wrote")
    args = ap.parse_args()
    if args.from_json:
        print(markdown(summarise(json.loads(args.from_json.read_text())["rows"])))
        return
    models = args.models.split(",") if args.models else list(FULL if args.full else SMALL)
    root = args.out or Path(tempfile.mkdtemp(prefix="edgest-passes-"))
    args.weights = bench_weights(models, dict(w.split("=", 1) for w in args.weights), root / "weights")
    console = Console(width=200)
    rows = []
    for model in models:
        for target in args.targets.split(","):
            cells = [("fp32", []), ("int8", [])] + ([("fp32", ["attention-to-conv"])] if has_attention(model) else [])
            group = [run_cell(model, target, precision, passes, root, args) for precision, passes in cells]
            retime_cells(group, args.threads, args.rounds)
            for row in group:
                console.print(f"{model} / {target} / {row['precision']} {row['passes']}: {row['status']} "
                              f"p50 {_f(row.get('p50_ms'))} ms {row.get('error', '')}")
            rows.extend(group)
            if args.json:  # after every model and target: a long run that is stopped still leaves its figures
                _write_json(args, rows)
    summary = summarise(rows)
    table = Table(title=f"passes matrix, {args.threads} thread(s), {cpu_model()}")
    for col in ("model", "target", "fp32 p50", "int8 p50", "fp32 MB", "int8 MB", "int8 SQNR", "int8 agree",
                "int8 task drop", "a2c p50"):
        table.add_column(col)
    for s in summary:
        table.add_row(s["model"], s["target"], _f(s["fp32_p50_ms"]), _f(s["int8_p50_ms"]), _f(s["fp32_mb"]), _f(s["int8_mb"]),
                      _f(s["int8_sqnr_db"], ".1f"), _f(s["int8_top1_agreement"], ".0%") if s["int8_top1_agreement"] is not None else "-",
                      _f(s["int8_task_drop_pts"], ".1f"), _f(s["a2c_p50_ms"]))
    console.print(table)
    print(markdown(summary))
    errors = [r for r in rows if r["status"] not in ("passed",)]
    for r in errors:
        print(f"- {r['model']} / {r['target']} / {r['precision']} {r['passes']}: {r['status']}: {r.get('error', '')}")
    if args.json:
        _write_json(args, rows)


def _write_json(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    doc = {"cpu": cpu_model(), "threads": args.threads, "rows": rows, "summary": summarise(rows)}
    args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
