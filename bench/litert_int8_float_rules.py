"""LiteRT int8 with and without the float rules of ``edgest.quantize.float_ops``: accuracy, then p50 in turns.

Compiles each model at ``--precision int8`` on LiteRT twice in this process, once as the target does it and
once with every rule returning nothing (each rule's nodes quantised), with the CLI's accuracy check (random init
unless ``--weights-dir`` holds ``<model>.pt``), then re-times the artifacts in turns in one process
(``edgest.checks.retime``) at each thread count. Prints one row per model.

    python bench/litert_int8_float_rules.py [--models squeezetime,emov2_1m,vivit_fa_ti] [--threads 1,2]
        [--weights-dir DIR] [--out /tmp/edgest-litert-rules]
    python bench/litert_int8_float_rules.py --models emov2_tiny_video --weights-dir W   # a trained tiny model
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgest.host import cpu_model, isa_summary


@contextlib.contextmanager
def rules(on: bool) -> Iterator[None]:
    """The LiteRT quantizer's float rules as they are (``on``), or returning no node."""
    from edgest_litert import quantizer

    real = quantizer.float_rules
    if not on:
        quantizer.float_rules = lambda graph, held=(), islands=True: {"output": set(), "tokens": set(), "islands": set()}
    try:
        yield
    finally:
        quantizer.float_rules = real


def compile_pair(model: str, out: Path, weights: Path | None) -> dict[str, Any]:
    """Both compiles of ``model``: {"with"/"without": (Compiled, accuracy text)}."""
    import edgest
    from edgest.checks.retime import Compiled

    done = {}
    for side, on in (("without", False), ("with", True)):
        run = out / f"{model}-{side}"
        with rules(on):
            report = edgest.compile(model, "litert", precision="int8", out_dir=run, latency=None,
                                    weights=str(weights) if weights else None)
        m = report.check("accuracy").metrics
        sqnr, agree, drop = m.get("sqnr_db"), m.get("top1_agreement"), m.get("task_top1_drop_pts")
        text = (f"{report.check('accuracy').status}" + (f" {sqnr:.1f} dB" if isinstance(sqnr, float) else "")
                + (f", top-1 agreement {agree:.1%}" if isinstance(agree, float) else "")
                + (f", task drop {drop:.1f} pt" if m.get("task_judged") and isinstance(drop, float) else ""))
        done[side] = (Compiled("litert", run / report.artifact.path, tuple(report.model.input.shape)), text)
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="squeezetime,emov2_1m,vivit_fa_ti")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--weights-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/edgest-litert-rules"))
    args = parser.parse_args()
    from edgest.checks.retime import retime

    threads = [int(t) for t in args.threads.split(",")]
    pairs = {}
    for model in args.models.split(","):
        weights = args.weights_dir / f"{model}.pt" if args.weights_dir else None
        pairs[model] = compile_pair(model, args.out, weights if weights and weights.is_file() else None)
    artifacts = {f"{m}/{side}": pair[side][0] for m, pair in pairs.items() for side in pair}
    p50 = {t: retime(artifacts, threads=t, rounds=3) for t in threads}
    print(f"Host: {cpu_model()}, {os.cpu_count()} cores; ISA: {isa_summary()}. p50 ms, median of 3 turns, at "
          f"{' / '.join(map(str, threads))} threads.\n")
    print("| model | without the rules | with them | accuracy without → with |\n|---|---|---|---|")
    for m, pair in pairs.items():
        cells = [" / ".join(f"{p50[t][f'{m}/{side}']['p50_ms']:.1f}" for t in threads) for side in ("without", "with")]
        print(f"| {m} | {cells[0]} | {cells[1]} | {pair['without'][1]} → {pair['with'][1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
