"""``edgest check --targets all`` wall time per zoo model: cold (an empty coverage cache) and again (answers kept).

Each run is a fresh ``edgest`` process, as a user types it, with ``XDG_CACHE_HOME`` pointed at a new
folder for the cold run and the same folder for the second. Prints one row per model (wall seconds,
capture seconds, the slowest target and its seconds, how many answers the second run reused) and the
host's ISA (reused: of the targets the cold run asked); ``--json FILE`` keeps every run's ``seconds``.

Run: ``python bench/check_speed.py`` (every full zoo config, about a minute per model on 2 cores) or
``python bench/check_speed.py --models squeezetime,lmuformer``.

``--baseline-tree DIR`` compares this checkout with another one (``git worktree add /tmp/old REV``) instead:
per model one cold check each, in turns (the order alternating from model to model), the other tree's
edgest, models, targets and plugins put ahead of the installed ones on ``PYTHONPATH``; prints both wall
times, their ratio and whether every target's verdicts are the same.
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


def tree_env(tree: Path) -> dict[str, str]:
    """``PYTHONPATH`` putting a checkout's edgest, models, targets and plugins ahead of the installed ones."""
    folders = [tree, tree / "models", *sorted((tree / "targets").glob("*")), *sorted((tree / "plugins").glob("*"))]
    return {"PYTHONPATH": os.pathsep.join(str(f) for f in folders if f.is_dir())}


def timed_check(model: str, scratch: Path, jobs: int, env: dict[str, str] | None = None) -> tuple[float, dict[str, Any]]:
    """(wall seconds, the JSON document) of one ``edgest check --model MODEL --targets all --json``, run from the
    ``scratch`` folder (so no checkout in the current directory shadows the one being timed) with its coverage
    cache in ``scratch/cache``. Not in ``scratch`` itself: ``python -m`` puts the current folder first on the
    path, and the cache's ``edgest/coverage`` folder there would shadow an editable install's ``edgest``."""
    env = {**os.environ, "XDG_CACHE_HOME": str(scratch / "cache"), **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgest", "check", "--model", model, "--targets", "all", "--json",
                           "--jobs", str(jobs)], capture_output=True, text=True, env=env, check=False, cwd=scratch)
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
    parser.add_argument("--baseline-tree", type=Path, help="another checkout to time in turns with this one")
    args = parser.parse_args()
    print(f"host: {cpu_model()}, {os.cpu_count()} cores, ISA: {isa_summary()}", flush=True)
    if args.baseline_tree:
        compare_trees(args.models.split(","), args.baseline_tree.resolve(), args.jobs)
        return
    print(f"{'model':<20} {'cold s':>7} {'again s':>8} {'capture s':>10} {'slowest target':>22} {'reused':>7}")
    rows = []
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as scratch:
            cold, doc = timed_check(model, Path(scratch), args.jobs)
            again, doc2 = timed_check(model, Path(scratch), args.jobs)
        asked = {k: v for k, v in doc["seconds"].items() if k != "capture"}
        slow = max(asked, key=asked.get) if asked else "-"
        print(f"{model:<20} {cold:7.1f} {again:8.1f} {doc['seconds']['capture']:10.1f} "
              f"{slow + ' ' + format(asked.get(slow, 0.0), '.1f'):>22} {len(doc2['cached']):>3}/{len(asked)}",
              flush=True)
        rows.append({"model": model, "cold_s": round(cold, 2), "again_s": round(again, 2), "seconds": doc["seconds"],
                     "again_seconds": doc2["seconds"], "reused": doc2["cached"]})
    if args.json:
        args.json.write_text(json.dumps({"host": isa_summary(), "rows": rows}, indent=1))


def compare_trees(models: list[str], baseline: Path, jobs: int) -> None:
    """One cold check per model with ``baseline``'s code and with this checkout's, in turns; a Markdown table."""
    if not (baseline / "edgest" / "__init__.py").is_file():
        raise SystemExit(f"check_speed: {baseline} is not an edgest checkout (no edgest/__init__.py); "
                         "make one with: git worktree add /tmp/old REV")
    print(f"| model | cold s, {baseline.name} | cold s, this tree | ratio | same verdicts |\n|---|---|---|---|---|")
    for i, model in enumerate(models):
        sides = [("baseline", tree_env(baseline)), ("this", None)]
        got = {}
        for side, env in sides if i % 2 == 0 else reversed(sides):
            with tempfile.TemporaryDirectory() as scratch:
                got[side] = timed_check(model, Path(scratch), jobs, env)
        verdicts = {k: {t: c["ops"] for t, c in doc["targets"].items()} for k, (_, doc) in got.items()}
        (old, _), (new, _) = got["baseline"], got["this"]
        same = "yes" if verdicts["baseline"] == verdicts["this"] else "NO"
        print(f"| {model} | {old:.1f} | {new:.1f} | {new / old:.2f} | {same} |", flush=True)


if __name__ == "__main__":
    main()
