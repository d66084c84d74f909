"""edgest against the tools users would pick instead, timed in turns in one process per thread count.

Peers (``--peers``, names in :data:`peers_lib.builders.PEERS`): torch eager; ``torch.compile``
(inductor, ``freezing=True``); plain ``torch.onnx.export(dynamo=True)`` + ONNX Runtime fp32;
ONNX Runtime ``quantize_static`` (QDQ, per-channel, its default MinMax calibration on the
calibration inputs edgest uses); ExecuTorch's default XNNPACK lowering fp32 and stock PT2E int8
(XNNPACKQuantizer, symmetric per-channel config); OpenVINO f32 (hint f32) and default (no hint);
OpenVINO + NNCF int8 (``nncf.quantize`` defaults); Olive int8 (``olive.workflows.run``: OnnxConversion →
OnnxPeepholeOptimizer → OnnxStaticQuantization QDQ per-channel; ``olive-ai``, which ``make setup``
installs; without it the row says "not installed"). A peer that cannot build a model is a row with its
one-line error.

edgest's side (``--edgest-targets`` × ``--edgest-precisions``) is compiled through
:func:`edgest.bench.run_bench` into ``--cache`` and loaded by each target's runner, in the same turns.

Per model and thread count: p50 (median of the per-turn p50s, :func:`edgest.checks.latency.measure_interleaved`),
its ratio to the best faithful peer, SQNR and top-1 agreement against eager PyTorch on seeded random
inputs, and whether the candidate meets edgest's own limits for its precision
(:data:`edgest.checks.accuracy.LIMITS`). Weights: each model's seeded random init, or stand-in weights
for models that ignore their input at init (as ``edgest bench --stand-in-weights``); the output says which.

Trained weights (``--trained-weights DIR``, issue 22's rule that an int8 candidate keeps the task top-1
drop within 1 pt on trained tiny variants): every candidate is built again from the model's trained tiny
variant (``DIR/<variant>.pt``, :data:`peers_lib.trained.TINY_OF`) and judged exactly as
``edgest compile --weights`` judges an artifact (random inputs pooled with the labelled clips, the limits
of its precision and the task limits); one that fails there is not faithful on the full model either.

    python bench/peers.py --models squeezetime --threads 1,2 --json peers.json
    edgest train --model squeezetime_tiny --out W/squeezetime_tiny.pt
    python bench/peers.py --models squeezetime --trained-weights W --markdown peers.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # peers_lib, also when this file is imported by path

from peers_lib.builders import PEERS

DEFAULT_MODELS = "squeezetime,emov2_1m,lmuformer,vivit_fa_ti"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated zoo names (default {DEFAULT_MODELS})")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts, one timing process each")
    ap.add_argument("--rounds", type=int, default=3, help="turns per candidate (median of their p50s)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"subset of: {', '.join(PEERS)}")
    ap.add_argument("--edgest-targets", default="onnx,executorch,openvino", help="edgest targets, or 'none'")
    ap.add_argument("--edgest-precisions", default="fp32,int8")
    ap.add_argument("--edgest-cells", default=None, help="instead of targets x precisions: e.g. onnx/int8,executorch/fp32")
    ap.add_argument("--trained-weights", type=Path, default=None, metavar="DIR",
                    help="judge every candidate also on each model's trained tiny variant (DIR/<variant>.pt, as "
                         "edgest train writes; peers_lib.trained.TINY_OF); one failing there is not faithful")
    ap.add_argument("--samples", type=int, default=8, help="seeded random inputs for SQNR (edgest's default: 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "edgest-peers",
                    help="where artifacts (peers' and edgest's bench cells) are kept between runs")
    ap.add_argument("--json", type=Path, default=None, help="also write every row as JSON")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables as Markdown")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.trained_weights is not None and not args.trained_weights.is_dir():
        ap.error(f"--trained-weights {args.trained_weights}: no such folder; give the folder edgest train wrote "
                 "<variant>.pt files into")
    unknown = [p for p in args.peers.split(",") if p and p not in PEERS]
    if unknown:
        ap.error(f"unknown peer(s) {', '.join(unknown)}; available: {', '.join(PEERS)}")
    return args


def host_lines() -> list[str]:
    """The host: CPU, cores, ISA features, and the load when the run started (other work inflates absolute times)."""
    from edgest.host import cpu_model, isa_summary

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [f"Host: {cpu_model()}, {os.cpu_count()} logical cores; ISA: {isa_summary()}; load average at start {load}.",
            "Absolute times depend on what else runs; ratios within one table come from one process, timed in turns."]


def edgest_cells(args: argparse.Namespace) -> dict[str, list[str]]:
    """edgest's cells to compile, as target → precisions (empty for ``--edgest-targets none``)."""
    if args.edgest_cells:
        groups: dict[str, list[str]] = {}
        for cell in args.edgest_cells.split(","):
            target, _, precision = cell.partition("/")
            groups.setdefault(target, []).append(precision or "fp32")
        return groups
    targets = [t for t in args.edgest_targets.split(",") if t and t != "none"]
    return {t: args.edgest_precisions.split(",") for t in targets}


def one_model(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Build every candidate of ``model``, time them at each thread count, return its tables' rows and summaries."""
    from peers_lib import edgest_side, tables, trained, worker
    from peers_lib.prepare import build_all

    root = args.cache / model
    t0 = time.perf_counter()
    groups = edgest_cells(args)
    listed = "; ".join(f"{t} {'/'.join(p)}" for t, p in groups.items()) or "none"
    print(f"{model}: edgest cells ({listed})", flush=True)
    mine: list[dict[str, Any]] = []
    for target, precisions in groups.items():  # one bench per target: a cell list need not be a full matrix
        weights, label, rows = edgest_side.candidates(model, [target], precisions, root / "edgest")
        mine += rows
    if not groups:
        weights, label = edgest_side.weights_for(model, root / "weights")
    print(f"{model}: weights: {label}\n{model}: peers", flush=True)
    names = [p for p in args.peers.split(",") if p]
    peers = build_all(model, weights, names, root, args.seed)
    candidates = peers + mine
    runnable = [c for c in candidates if "error" not in c]
    out: dict[str, Any] = {"weights": label, "weights_path": str(weights) if weights else None, "threads": {}}
    out["trained"] = judged = trained.verdicts(model, args.trained_weights, groups, names, args.cache,
                                              Path(__file__).resolve(), args.samples, args.seed)
    if judged is not None:
        out["trained_markdown"] = trained.markdown(model, judged, {c["key"]: c["label"] for c in candidates})
        print("\n" + out["trained_markdown"], flush=True)
    for threads in (int(t) for t in args.threads.split(",")):
        spec = {"model": model, "weights": str(weights) if weights else None, "threads": threads, "samples": args.samples,
                "seed": args.seed, "rounds": args.rounds, "candidates": runnable}
        results = worker.run(Path(__file__).resolve(), spec, root / f"timing-{threads}")
        rows = [tables.row(c, results.get(c["key"]) if "error" not in c else None) for c in candidates]
        trained.apply(rows, judged)
        summary = tables.add_ratios(rows)
        out["threads"][str(threads)] = {"rows": rows, "summary": summary, "markdown": tables.markdown(model, threads, rows, summary)}
        print("\n" + out["threads"][str(threads)]["markdown"], flush=True)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the comparison; print the tables; return (and with ``--json`` write) the document."""
    args = parse(argv)
    if args.worker:
        from peers_lib import worker

        worker.main(args.worker)
        return {}
    from peers_lib.builders import versions

    from edgest.host import describe

    head = host_lines()
    print("\n".join(head) + "\n", flush=True)
    doc: dict[str, Any] = {"host": describe(), "host_lines": head, "versions": versions(),
                           "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "worker"},
                           "models": {}}
    for model in args.models.split(","):
        doc["models"][model] = one_model(model, args)
        if args.json:
            args.json.write_text(json.dumps(doc, indent=1, default=str))
    text = "\n".join(head) + "\n\n" + "\n".join(
        f"Weights of {m}: {d['weights']}.\n\n" + (d["trained_markdown"] + "\n" if d.get("trained_markdown") else "") + "\n".join(t["markdown"] for t in d["threads"].values())
        for m, d in doc["models"].items())
    if args.markdown:
        args.markdown.write_text(text)
    return doc


if __name__ == "__main__":
    main()
