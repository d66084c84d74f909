"""OpenVINO f32 vs bf16 vs NNCF int8 vs edgest's onnx fp32 on one model, timed in turns in one process.

A benchmark, not a test: each artifact is compiled (and checked) by ``edgest.compile``, then all
are loaded by their own runners and re-timed in turns (:func:`edgest.checks.retime.retime`), so a
busy spell on a shared host falls on all of them alike. Prints the host's ISA with the table.

    python plugins/edgest-openvino/bench/precisions.py --model squeezetime --threads 1 --out /tmp/ov-bench
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import edgest
from edgest.checks.retime import Compiled, retime
from edgest.host import cpu_model, describe, isa_summary

#: (key, target, precision)
RUNS = (("openvino f32", "openvino", "fp32"), ("openvino bf16", "openvino", "bf16"),
        ("openvino int8 (NNCF)", "openvino", "int8"), ("onnx fp32", "onnx", "fp32"))


def compile_all(model: str, out: Path, threads: int) -> dict[str, dict[str, Any]]:
    """Compile every run of :data:`RUNS` (accuracy checked, latency left to the re-timing)."""
    rows: dict[str, dict[str, Any]] = {}
    for key, target, precision in RUNS:
        folder = out / key.split()[0] / precision
        report = edgest.compile(model, target, precision=precision, out_dir=folder, force=True, threads=threads, latency=None)
        acc = report.check("accuracy")
        details = report.artifact.details if report.artifact else {}
        rows[key] = {"status": report.status, "error": report.error, "target": target, "precision": precision,
                     "artifact": folder / report.artifact.path if report.artifact else None,
                     "input_shape": tuple(report.model.input.shape), "sqnr_db": acc.metrics.get("sqnr_db"),
                     "compile_s": report.artifact.compile_seconds if report.artifact else None,
                     "execution": details.get("execution_precision", "-"),
                     "layers": details.get("compute_layers_by_precision", "-")}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="squeezetime")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/edgest-ov-bench"))
    args = parser.parse_args()
    rows = compile_all(args.model, args.out, args.threads)
    built = {k: Compiled(r["target"], r["artifact"], r["input_shape"], {"precision": r["precision"]} if r["target"] == "openvino"
                         and r["precision"] != "int8" else {}) for k, r in rows.items() if r["artifact"] is not None}
    for key, stats in retime(built, args.threads, args.rounds).items():
        rows[key].update(p50_ms=stats["p50_ms"], min_p50_ms=stats["min_p50_ms"], max_p50_ms=stats["max_p50_ms"])
    base = rows["onnx fp32"].get("p50_ms")
    print(f"{args.model}, {args.threads} thread(s), {cpu_model()} ({describe()['cpu_count']} cores)\nISA: {isa_summary()}\n")
    print("| artifact | status | runtime executes | compute layers | SQNR dB | p50 ms (min-max of turns) | vs onnx fp32 | compile s |")
    print("|---|---|---|---|---|---|---|---|")
    for key, r in rows.items():
        p50 = r.get("p50_ms")
        print(f"| {key} | {r['status']} | {r['execution']} | {r['layers']} | {r['sqnr_db'] or 0:.1f} | "
              f"{p50 or 0:.1f} ({r.get('min_p50_ms', 0):.1f}-{r.get('max_p50_ms', 0):.1f}) | "
              f"{(p50 / base) if p50 and base else 0:.2f}x | {r['compile_s'] or 0:.0f} |")
    (args.out / "precisions.json").write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
