"""ExecuTorch lowering with and without skipping the re-traces that could not change the graph.

For each model and precision: the program is built, captured and (int8) quantised once, as a
compile does it; then ``edgest_executorch.lowering.lower_to_pte`` lowers a copy of it with
:func:`edgest_executorch.retraces.skip_unchanged_retraces` switched off and on, in turns, in this
one process (``--rounds`` pairs, the order alternating: off/on, then on/off, ...), after one unmeasured
lowering that pays the process's one-time set-up. Prints the best
seconds of each and whether every ``.pte`` is byte-identical to the first one; exits 1 if one is not.
``--baseline passes`` keeps the passes' skip on the "off" side, so the pair measures the decompositions'
skip alone; ``--baseline retraces`` keeps both re-trace skips, so it measures the memo of the edge verifier's
dtype check alone; ``--baseline recompiles`` and ``--baseline passthrough`` keep every skip but one, the memo of
unchanged recompiles (:mod:`edgest_executorch.recompiles`) or the skip of passes with no op to rewrite
(:mod:`edgest_executorch.passthrough`). ``--stage coverage`` times what ``edgest check`` asks instead (the target's ``coverage`` on the
captured fp32 program; identical means the same verdicts).

Run: ``python bench/executorch_retraces.py [--models squeezetime,emov2_1m] [--precisions fp32,int8] [--rounds 1]
[--baseline none|passes|retraces|recompiles|passthrough] [--stage lower|coverage]`` (full SqueezeTime int8 takes about 4 minutes a pair on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
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


def program_to_check(model: str, precision: str) -> Any:
    """The program ``edgest check`` asks the targets about (captured fp32, whatever the precision)."""
    from edgest.preflight import capture_for_check

    return capture_for_check(model)[1]


def coverage_to(program: Any, path: Path) -> None:
    """The ExecuTorch target's coverage of ``program``, written to ``path`` as JSON (what ``edgest check`` asks)."""
    from edgest.plugins import get_registry
    from edgest.preflight import ask, target_for_check

    answer = ask(target_for_check(get_registry().target("executorch"), None), program, None)
    path.write_text(json.dumps(answer.to_dict(), sort_keys=True))


def lower(program: Any, path: Path, skip: bool, baseline: str = "none", stage: str = "lower") -> float:
    """Seconds to lower a copy of ``program`` to ``path`` (or, ``stage`` coverage, to ask its coverage), with or
    without the skip (without: ``baseline``'s part of it, ``none``, ``passes`` or ``retraces``)."""
    from edgest_executorch import lowering, retraces

    real = retraces.skip_unchanged_retraces
    if not skip:
        off = {"passes": retraces._skip_unchanged_passes, "retraces": _retraces_only,
               "recompiles": _without("recompiles"), "passthrough": _without("passthrough")}
        retraces.skip_unchanged_retraces = off.get(baseline, contextlib.nullcontext)  # type: ignore[assignment]
    try:
        program = copy.deepcopy(program)
        t0 = time.perf_counter()
        if stage == "coverage":
            coverage_to(program, path)
        else:
            lowering.lower_to_pte(program, path, flavour="xnnpack", decompose=True)
        return time.perf_counter() - t0
    finally:
        retraces.skip_unchanged_retraces = real  # type: ignore[assignment]


@contextlib.contextmanager
def _retraces_only() -> Any:
    """Both re-trace skips without the dtype-check memo (``--baseline retraces``)."""
    from edgest_executorch import retraces

    with retraces._skip_unchanged_passes(), retraces._skip_empty_decompositions():
        yield


def _without(part: str) -> Any:
    """Every skip but one: the recompile memo (``--baseline recompiles``) or the skip of the passes that work in the
    re-trace on ops the graph lacks (``--baseline passthrough``)."""
    from edgest_executorch import passthrough, recompiles, retraces

    real = retraces.skip_unchanged_retraces  # read before lower() puts this block in its place

    @contextlib.contextmanager
    def block() -> Any:
        owner, name, stand_in = ((recompiles, "skip_unchanged_recompiles", contextlib.nullcontext) if part == "recompiles"
                                 else (passthrough, "has_no_work", lambda *_: False))
        kept = getattr(owner, name)
        setattr(owner, name, stand_in)
        try:
            with real():
                yield
        finally:
            setattr(owner, name, kept)

    return block


_WARM: list[bool] = []


def compare(model: str, precision: str, rounds: int, work: Path, baseline: str,
            stage: str = "lower") -> tuple[float, float, bool]:
    """(best seconds without, best seconds with, every .pte, or coverage, identical)."""
    program = (program_to_check if stage == "coverage" else program_for)(model, precision)
    if not _WARM:  # the first lowering in a process also builds XNNPACK's pattern graphs: not a side's cost
        lower(program, work / "warm.pte", True, stage=stage)
        _WARM.append(True)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    blobs = []
    for r in range(rounds):
        for skip in ((False, True) if r % 2 == 0 else (True, False)):
            path = work / f"{model}-{precision}-{r}-{int(skip)}.pte"
            seconds[skip].append(lower(program, path, skip, baseline, stage))
            blobs.append(path.read_bytes())
    return min(seconds[False]), min(seconds[True]), all(b == blobs[0] for b in blobs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="squeezetime")
    parser.add_argument("--precisions", default="int8,fp32")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline", choices=("none", "passes", "retraces", "recompiles", "passthrough"), default="none",
                        help="what the 'off' side still skips: nothing, the passes' re-traces, both re-trace skips, or "
                             "all but the recompile memo or but the skip of passes with no ops to rewrite")
    parser.add_argument("--stage", choices=("lower", "coverage"), default="lower",
                        help="time the lowering, or the coverage edgest check asks (fp32 program)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # torch's deprecation notes on copying a program, once per lowering
    print(f"host: {cpu_model()}, ISA: {isa_summary()}, {os.cpu_count()} cores")
    off_side = {"none": "re-traced", "passes": "passes skipped", "retraces": "re-traces skipped",
                "recompiles": "all but recompiles skipped", "passthrough": "all but passthrough passes skipped"}[args.baseline]
    what = "lower" if args.stage == "lower" else "coverage"
    print(f"| model | precision | {what} s, {off_side} | {what} s, all skipped | ratio | identical |")
    print("|---|---|---|---|---|---|")
    same_everywhere = True
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for precision in args.precisions.split(","):
                off, on, same = compare(model, precision, args.rounds, Path(tmp), args.baseline, args.stage)
                same_everywhere &= same
                print(f"| {model} | {precision} | {off:.1f} | {on:.1f} | {on / off:.2f} | {'yes' if same else 'NO'} |",
                      flush=True)
    return 0 if same_everywhere else 1


if __name__ == "__main__":
    sys.exit(main())
