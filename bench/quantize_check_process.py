"""The quantize stage's runs in one check process against a fresh process per run, in turns.

An artifact-stage int8 compile (onnx, and the OpenVINO plugin's NNCF) runs the float and the
quantised artifact to report the pass's accuracy delta, and with ``--quant-sensitivity`` one more
quantised variant per layer. Each run loads the runtime in an isolated check process; this script
compiles each model twice per round, cold, in a fresh process and an empty scratch folder: once as
edgest does it (:class:`edgest.checks.session.CheckSession`, one worker for all runs) and once with
``run_in_child`` per run (a fresh Python, torch and runtime each time, as before the session), and
prints the quantize stage's seconds, the whole compile's wall time and the delta both measured.

    python bench/quantize_check_process.py --models squeezetime,emov2_1m --target onnx [--sensitivity] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_CHILD = r"""
import contextlib, json, sys
import edgest, edgest.checks.session as session
from edgest.checks.isolated import run_in_child

class PerRun:
    started = 0
    def run(self, target, artifact, inputs, threads=1):
        PerRun.started += 1
        return run_in_child(target, artifact, inputs, threads=threads, latency=None)

model, target, mode, out, sensitivity = sys.argv[1:6]
if mode == "per-run":
    session.check_session = lambda timeout_s=600.0: contextlib.nullcontext(PerRun())
passes = [("quantize", {"sensitivity": True})] if sensitivity == "1" else []
report = edgest.compile(model, target, out_dir=out, precision="int8", passes=passes, latency=None)
(rec,) = [p for p in report.passes if p.name == "quantize"]
print(json.dumps({"status": report.status, "stage_seconds": report.stage_seconds, "delta": rec.accuracy_delta,
                  "layers": len(rec.details.get("sensitivity", {}).get("layers", []))}))
"""


def compile_once(model: str, target: str, mode: str, sensitivity: bool) -> dict[str, Any]:
    """One cold int8 compile in a fresh process; its quantize seconds, wall seconds and delta."""
    with tempfile.TemporaryDirectory(prefix="edgest-qcp-") as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CHILD, model, target, mode, str(Path(tmp) / "run"), str(int(sensitivity))],
                              capture_output=True, text=True, cwd=tmp, check=False)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200], "wall_s": wall}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**result, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="squeezetime,emov2_1m")
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--sensitivity", action="store_true", help="also --quant-sensitivity (one run per layer)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from edgest.host import isa_summary

    print(f"host ISA: {isa_summary()}")
    print("| model | run | check processes | quantize s | wall s | delta SQNR dB | layers |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for _ in range(args.rounds):
        for model in args.models.split(","):
            for mode in ("session", "per-run"):
                r = {"model": model, "mode": mode, **compile_once(model, args.target, mode, args.sensitivity)}
                rows.append(r)
                if "error" in r:
                    print(f"| {model} | {mode} | | | {r['wall_s']:.1f} | {r['error']} | |", flush=True)
                    continue
                sqnr = (r["delta"] or {}).get("sqnr_db")
                print(f"| {model} | {mode} | {'one' if mode == 'session' else 'one per run'} | "
                      f"{r['stage_seconds'].get('quantize', 0):.1f} | {r['wall_s']:.1f} | "
                      f"{sqnr if sqnr is None else round(sqnr, 2)} | {r['layers']} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
