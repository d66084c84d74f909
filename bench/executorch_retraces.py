"""ExecuTorch lowering with and without skipping the re-traces of passes that changed nothing.

For each model and precision: the program is built, captured and (int8) quantised once, as a
compile does it; then ``edgest_executorch.lowering.lower_to_pte`` lowers a copy of it with
:func:`edgest_executorch.retraces.skip_unchanged_retraces` switched off and on, in turns, in this
one process (``--rounds`` pairs, the order alternating: off/on, then on/off, ...). Prints the best
seconds of each and whether every ``.pte`` is byte-identical to the first one; exits 1 if one is not.

Run: ``python bench/executorch_retraces.py [--models squeezetime,emov2_1m] [--precisions fp32,int8] [--rounds 1]``
(full SqueezeTime int8 takes about 4 minutes a pair on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from edgest.host import cpu_model, isa_summary


def program_for(model: str, precision: str) -> Any:
    """The program a compile hands to ``lower``: built, captured and quantised (int8) as the pipeline does."""
    from edgest.plan import plan
    from edgest.stages.build import build
    from edgest.stages.transform import capture_program, run_passes

    p = plan(model, "executorch", precision=precision, samples=2, latency=None)
    built = build(p)
    program, example = capture_program(p, built)
    return run_passes(p, program, example, built).program


def lower(program: Any, path: Path, skip: bool) -> float:
    """Seconds to lower a copy of ``program`` to ``path``, with or without the skip."""
    from edgest_executorch import lowering, retraces

    real = retraces.skip_unchanged_retraces
    if not skip:
        retraces.skip_unchanged_retraces = contextlib.nullcontext  # type: ignore[assignment]
    try:
        program = copy.deepcopy(program)
        t0 = time.perf_counter()
        lowering.lower_to_pte(program, path, flavour="xnnpack", decompose=True)
        return time.perf_counter() - t0
    finally:
        retraces.skip_unchanged_retraces = real  # type: ignore[assignment]


def compare(model: str, precision: str, rounds: int, work: Path) -> tuple[float, float, bool]:
    """(best seconds without, best seconds with, every .pte identical)."""
    program = program_for(model, precision)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    blobs = []
    for r in range(rounds):
        for skip in ((False, True) if r % 2 == 0 else (True, False)):
            path = work / f"{model}-{precision}-{r}-{int(skip)}.pte"
            seconds[skip].append(lower(program, path, skip))
            blobs.append(path.read_bytes())
    return min(seconds[False]), min(seconds[True]), all(b == blobs[0] for b in blobs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="squeezetime")
    parser.add_argument("--precisions", default="int8,fp32")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # torch's deprecation notes on copying a program, once per lowering
    print(f"host: {cpu_model()}, ISA: {isa_summary()}, {os.cpu_count()} cores")
    print("| model | precision | lower s, re-traced | lower s, skipped | ratio | .pte identical |")
    print("|---|---|---|---|---|---|")
    same_everywhere = True
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for precision in args.precisions.split(","):
                off, on, same = compare(model, precision, args.rounds, Path(tmp))
                same_everywhere &= same
                print(f"| {model} | {precision} | {off:.1f} | {on:.1f} | {on / off:.2f} | {'yes' if same else 'NO'} |",
                      flush=True)
    return 0 if same_everywhere else 1


if __name__ == "__main__":
    sys.exit(main())
