"""`edgest bench` wall time: --executor local vs --executor pool --jobs N on one 4-cell tiny matrix, in turns.

Runs the CLI (fresh folder, --no-cache) with each executor for ``--rounds`` rounds, alternating which goes first,
and prints each run's wall seconds, its cells' p50 latencies and the host's load average before the run, and each
round's pool / local ratio (other work on a shared host slows both executors; in turns, it slows them alike). ``--timing-lock`` sets the pool's timing policy
(``EDGEST_TIMING_LOCK``, :mod:`edgest.executors.timing`). Run:
``python bench/executors_local_vs_pool.py [--jobs 2] [--rounds 2] [--timing-lock turns|alone] [--json figures.json]``.
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

from edgest.host import cpu_model

MATRIX = ["--models", "squeezetime_tiny,lmuformer_tiny", "--targets", "eager,onnx", "--precisions", "fp32"]


def one_run(executor: list[str], out: Path, policy: str) -> dict:
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgest", "bench", *MATRIX, "--out", str(out), "--no-cache", "--quiet",
                           *executor], capture_output=True, text=True, check=False,
                          env={**os.environ, "EDGEST_TIMING_LOCK": policy})
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"edgest bench {' '.join(executor)} failed: {proc.stderr[-2000:]}")
    doc = json.loads((out / "bench.json").read_text())
    cells = {f"{c['model']}/{c['target']}": (c["status"], (c.get("latency") or {}).get("p50_ms")) for c in doc["cells"]}
    return {"executor": " ".join(executor) or "local", "wall_s": round(wall, 1), "load_before": round(load, 2),
            "cells": cells}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--timing-lock", default="turns", choices=["turns", "alone"])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="edgest-exec-bench-"))
    print(f"host: {cpu_model()}, {os.cpu_count()} CPUs; matrix: {' '.join(MATRIX)}; timing lock: {args.timing_lock}",
          flush=True)
    runs, ratios = [], []
    for r in range(args.rounds):
        order = [("local", ["--executor", "local"]), ("pool", ["--executor", "pool", "--jobs", str(args.jobs)])]
        for name, flags in order[:: 1 if r % 2 == 0 else -1]:  # alternate who goes first: drifting load hits both
            fig = one_run(flags, root / f"{name}-{r}", args.timing_lock)
            runs.append({**fig, "round": r + 1})
            p50 = ", ".join(f"{k} {v[1]:.2f} ms" if v[1] else f"{k} {v[0]}" for k, v in fig["cells"].items())
            print(f"round {r + 1} {fig['executor']:<22} {fig['wall_s']:7.1f} s  (load {fig['load_before']:.1f})  p50: {p50}",
                  flush=True)
        local, pool = (next(f["wall_s"] for f in runs if f["round"] == r + 1 and f["executor"].split()[1] == n)
                       for n in ("local", "pool"))
        ratios.append(pool / local)
        print(f"round {r + 1}: pool / local = {pool / local:.2f}", flush=True)
    for name in ("local", "pool"):
        walls = [f["wall_s"] for f in runs if f["executor"].split()[1] == name]
        print(f"{name}: wall seconds {walls}, mean {sum(walls) / len(walls):.1f}")
    print(f"pool / local per round: {[round(x, 2) for x in ratios]}, mean {sum(ratios) / len(ratios):.2f}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
