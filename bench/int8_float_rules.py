"""int8 with and without the float rules of ``edgest.quantize.float_ops``: accuracy, then p50 in turns.

Compiles each model at ``--precision int8`` on ``--target`` (LiteRT or Core ML, whose quantizers take the rules
as ExecuTorch's does) twice in this process, once as the target does it and once with every rule returning
nothing (each rule's nodes quantised), with the CLI's accuracy check (random init unless ``--weights-dir`` holds
``<model>.pt``), then re-times the artifacts in turns in one process (``edgest.checks.retime``) at each thread
count. Prints one row per model. Core ML off macOS: accuracy on the MIL reference interpreter, no timing.

    python bench/int8_float_rules.py [--target litert|coreml] [--models squeezetime,emov2_1m,vivit_fa_ti]
        [--threads 1,2] [--weights-dir DIR] [--out /tmp/edgest-int8-rules]
    python bench/int8_float_rules.py --models emov2_tiny_video --weights-dir W   # a trained tiny model
    python bench/int8_float_rules.py --target coreml --ranges moving_average_min_max   # coremltools' default ranges
    python bench/int8_float_rules.py --target coreml --target-option int8_scheme=affine
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgest.host import cpu_model, isa_summary


@contextlib.contextmanager
def rules(target: str, on: bool) -> Iterator[None]:
    """``target``'s quantizer's float rules as they are (``on``), or returning no node."""
    import importlib

    quantizer = importlib.import_module(f"edgest_{target}.quantizer")

    real = quantizer.float_rules
    if not on:
        quantizer.float_rules = lambda graph, held=(), islands=True: {"output": set(), "tokens": set(), "islands": set()}
    try:
        yield
    finally:
        quantizer.float_rules = real


def compile_pair(target: str, model: str, out: Path, weights: Path | None,
                 options: dict[str, str] | None = None) -> dict[str, Any]:
    """Both compiles of ``model``: {"with"/"without": (Compiled, accuracy text)}."""
    import edgest
    from edgest.checks.retime import Compiled

    done = {}
    for side, on in (("without", False), ("with", True)):
        run = out / f"{model}-{side}"
        start = time.perf_counter()
        with rules(target, on):
            report = edgest.compile(model, target, precision="int8", out_dir=run, latency=None, target_options=options or {},
                                    weights=str(weights) if weights else None)
        m = report.check("accuracy").metrics
        sqnr, agree, drop = m.get("sqnr_db"), m.get("top1_agreement"), m.get("task_top1_drop_pts")
        text = (f"{report.check('accuracy').status}" + (f" {sqnr:.1f} dB" if isinstance(sqnr, float) else "")
                + (f", top-1 agreement {agree:.1%}" if isinstance(agree, float) else "")
                + (f", task drop {drop:.1f} pt" if m.get("task_judged") and isinstance(drop, float) else "")
                + f" (compile {time.perf_counter() - start:.0f} s)")
        done[side] = (Compiled(target, run / report.artifact.path, tuple(report.model.input.shape)), text)
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("litert", "coreml"), default="litert")
    parser.add_argument("--models", default="squeezetime,emov2_1m,vivit_fa_ti")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--weights-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/edgest-int8-rules"))
    parser.add_argument("--target-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--ranges", choices=("min_max", "moving_average_min_max"), default=None,
                        help="coreml: the activation observer (the target's is min_max; coremltools' default the other)")
    args = parser.parse_args()
    if args.ranges and args.target != "coreml":
        parser.error("--ranges sets Core ML's activation observer; give it with --target coreml")
    if any("=" not in o for o in args.target_option):
        parser.error("--target-option takes KEY=VALUE, e.g. int8_scheme=affine")
    options = dict(o.split("=", 1) for o in args.target_option)
    if args.ranges:
        from edgest_coreml import quantizer

        quantizer.CONFIG["activation_observer"] = args.ranges
    from edgest.checks.retime import retime

    timed = args.target != "coreml" or sys.platform == "darwin"  # Core ML prediction needs macOS
    threads = [int(t) for t in args.threads.split(",")] if timed else []
    pairs = {}
    for model in args.models.split(","):
        weights = args.weights_dir / f"{model}.pt" if args.weights_dir else None
        pairs[model] = compile_pair(args.target, model, args.out, weights if weights and weights.is_file() else None,
                                    options)
    artifacts = {f"{m}/{side}": pair[side][0] for m, pair in pairs.items() for side in pair}
    p50 = {t: retime(artifacts, threads=t, rounds=3) for t in threads}
    told = "".join(f", {k}={v}" for k, v in options.items()) + (f", ranges {args.ranges}" if args.ranges else "")
    print(f"Host: {cpu_model()}, {os.cpu_count()} cores; ISA: {isa_summary()}; target {args.target}{told}. "
          + (f"p50 ms, median of 3 turns, at {' / '.join(map(str, threads))} threads.\n" if timed
             else "Not timed: Core ML prediction needs macOS (accuracy from the MIL reference interpreter).\n"))
    print("| model | without the rules | with them | accuracy without → with |\n|---|---|---|---|")
    for m, pair in pairs.items():
        cells = [" / ".join(f"{p50[t][f'{m}/{side}']['p50_ms']:.1f}" for t in threads) or "not timed"
                 for side in ("without", "with")]
        print(f"| {m} | {cells[0]} | {cells[1]} | {pair['without'][1]} → {pair['with'][1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
