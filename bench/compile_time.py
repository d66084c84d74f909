"""Cold ``edgest compile`` wall time per model × target × precision, against issue 22's budgets.

Each cell is one ``edgest compile`` in a fresh process, from an empty scratch folder with an empty
``XDG_CACHE_HOME`` (nothing a previous compile left is reused), with the CLI's defaults (accuracy and
latency checks included: they are part of what a user waits for). Prints the wall seconds, the report's
``stage_seconds`` (build, capture, passes, lower, quantize: where a target quantises its artifact after
``lower``, checks), the budget (≤ 30 s fp32 and other float
precisions, ≤ 90 s int8, cold, on 2 cores) and whether the artifact passed its accuracy check.

    python bench/compile_time.py [--models squeezetime,emov2_1m,lmuformer,vivit_fa_ti]
        [--targets onnx,executorch,openvino] [--precisions fp32,int8] [--json out.json]

A cell the target cannot build is a row with the CLI's one-line error. Full configs take minutes each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edgest.host import cpu_model, isa_summary

#: issue 22, item 6: cold seconds per full zoo model and target on 2 cores
BUDGET_S = {"int8": 90.0}
FLOAT_BUDGET_S = 30.0
STAGES = ("build", "capture", "passes", "lower", "quantize", "checks")  # quantize: an artifact-stage quantizer (onnx)


def budget(precision: str) -> float:
    """The cold-compile budget for ``precision``."""
    return BUDGET_S.get(precision, FLOAT_BUDGET_S)


def compile_cold(model: str, target: str, precision: str) -> dict[str, Any]:
    """One cold compile: its wall seconds, stage seconds, accuracy status, or the CLI's last error line."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(scratch) / "cache")}
        out = Path(scratch) / "run"
        cmd = [sys.executable, "-m", "edgest", "compile", "--model", model, "--target", target,
               "--precision", precision, "--out", str(out), "--json"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=scratch, check=False)
        wall = time.perf_counter() - t0
        row: dict[str, Any] = {"model": model, "target": target, "precision": precision, "wall_s": round(wall, 1)}
        report_path = out / "report.json"
        if not report_path.is_file():
            lines = proc.stderr.strip().splitlines()
            return {**row, "error": lines[-1] if lines else f"exit {proc.returncode}, no report"}
        report = json.loads(report_path.read_text())
    accuracy = [c for c in report.get("checks", []) if c.get("kind") == "accuracy"]
    return {**row, "status": report.get("status"), "stages": report.get("stage_seconds", {}),
            "accuracy": accuracy[0]["status"] if accuracy else "not run", "error": report.get("error", "")}


def table_row(row: dict[str, Any]) -> str:
    """One Markdown row: cell, wall, stages, budget verdict, accuracy (or the error)."""
    cell = f"| {row['model']} | {row['target']} | {row['precision']} | {row['wall_s']:.1f} |"
    if "stages" not in row:
        return f"{cell} {' | '.join('-' for _ in STAGES)} | - | {row['error']} |"
    stages = " | ".join(f"{row['stages'].get(s, 0.0):.1f}" for s in STAGES)
    within = "yes" if row["wall_s"] <= budget(row["precision"]) else f"NO (> {budget(row['precision']):.0f})"
    why = row["error"].split(";")[0][:90]  # the first clause; the whole message is in --json
    if why and row["accuracy"] == "passed":  # another check's reason (Core ML's latency off macOS), not accuracy's
        return f"{cell} {stages} | {within} | passed (report {row['status']}: {why}) |"
    return f"{cell} {stages} | {within} | {row['accuracy']}{': ' + why if why else ''} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="squeezetime,emov2_1m,lmuformer,vivit_fa_ti")
    parser.add_argument("--targets", default="onnx,executorch,openvino")
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"host: {cpu_model()}, {os.cpu_count()} cores, ISA: {isa_summary()}", flush=True)
    print("| model | target | precision | wall s | " + " | ".join(f"{s} s" for s in STAGES)
          + " | within budget | accuracy |\n|" + "---|" * (6 + len(STAGES)), flush=True)
    rows = []
    for model in args.models.split(","):
        for target in args.targets.split(","):
            for precision in args.precisions.split(","):
                rows.append(compile_cold(model, target, precision))
                print(table_row(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"host": isa_summary(), "cpu": cpu_model(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
