"""``edgest check --targets all`` wall time per zoo model: cold (an empty coverage cache) and again (answers kept).

Each run is a fresh ``edgest`` process, as a user types it, with ``XDG_CACHE_HOME`` pointed at a new
folder for the cold run and the same folder for the second. Prints one row per model (wall seconds,
capture seconds, the slowest target and its seconds, how many answers the second run reused) and the
host's ISA (reused: of the targets the cold run asked); ``--json FILE`` keeps every run's ``seconds``.

Run: ``python bench/check_speed.py`` (every full zoo config, about a minute per model on 2 cores) or
``python bench/check_speed.py --models squeezetime,lmuformer``.
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

ZOO = ("squeezetime", "emov2_1m", "emov2_20m", "emov2_20m_video", "lmuformer", "lmuformer_spiking", "lmuformer_video",
       "vivit_fa_ti", "vivit_fe_b")


def timed_check(model: str, cache: Path, jobs: int) -> tuple[float, dict[str, Any]]:
    """(wall seconds, the JSON document) of one ``edgest check --model MODEL --targets all --json``."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgest", "check", "--model", model, "--targets", "all", "--json",
                           "--jobs", str(jobs)], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"edgest check --model {model} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return wall, json.loads(proc.stdout)


def main() -> None:
    from edgest.host import cpu_model, isa_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ZOO))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"host: {cpu_model()}, {os.cpu_count()} cores, ISA: {isa_summary()}", flush=True)
    print(f"{'model':<20} {'cold s':>7} {'again s':>8} {'capture s':>10} {'slowest target':>22} {'reused':>7}")
    rows = []
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as cache:
            cold, doc = timed_check(model, Path(cache), args.jobs)
            again, doc2 = timed_check(model, Path(cache), args.jobs)
        asked = {k: v for k, v in doc["seconds"].items() if k != "capture"}
        slow = max(asked, key=asked.get) if asked else "-"
        print(f"{model:<20} {cold:7.1f} {again:8.1f} {doc['seconds']['capture']:10.1f} "
              f"{slow + ' ' + format(asked.get(slow, 0.0), '.1f'):>22} {len(doc2['cached']):>3}/{len(asked)}",
              flush=True)
        rows.append({"model": model, "cold_s": round(cold, 2), "again_s": round(again, 2), "seconds": doc["seconds"],
                     "again_seconds": doc2["seconds"], "reused": doc2["cached"]})
    if args.json:
        args.json.write_text(json.dumps({"host": isa_summary(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
