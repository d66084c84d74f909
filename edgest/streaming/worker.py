"""The isolated check process's streaming run: whole sequences step by step, the artifact's own state fed back.

For each sequence the state starts at its initial value; each step runs ``(x_t, *state)`` and the
outputs after the first become the next step's state. The first outputs of every step are written
to ``stream_outputs.npz`` (``q{i}``: steps first). Then, unless the latency protocol is off, one
continuous stream (the first sequence, over and over, state carried) is timed per step with the
shared protocol (:func:`edgest.checks.latency.measure`). The stepping itself is
:mod:`edgest.streaming.stepping`, NumPy only, which device bundles carry too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgest.checks.latency import LatencyConfig
from edgest.streaming import stepping
from edgest.streaming.stepping import StepRunner, stream_sequence

__all__ = ["INPUTS", "OUTPUTS", "StepRunner", "run", "step_latency", "stream_sequence"]

#: what the parent writes beside ``inputs.npz``: ``q{i}`` step inputs per sequence, ``init{j}`` initial states
INPUTS = "stream.npz"
OUTPUTS = "stream_outputs.npz"


def step_latency(runner: StepRunner, steps: np.ndarray, init: list[np.ndarray], cfg: LatencyConfig) -> dict[str, float]:
    """:func:`edgest.streaming.stepping.step_latency`, taking its turn with the other timings on this host."""
    from edgest.executors.timing import timing_turn

    with timing_turn():  # timings on this host take turns (edgest.executors.timing)
        return stepping.step_latency(runner, steps, init, cfg)


def run(runner: StepRunner, work: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Stream every sequence in ``work/stream.npz``; per-step latency when ``request["latency"]``; figures or the error."""
    try:
        with np.load(work / INPUTS) as data:
            seqs = [data[f"q{i}"] for i in range(request["sequences"])]
            init = [data[f"init{j}"] for j in range(request["states"])]
        outs = [stream_sequence(runner, s, init) for s in seqs]
        np.savez(work / OUTPUTS, **{f"q{i}": o for i, o in enumerate(outs)})
        result: dict[str, Any] = {"sequences": len(outs)}
        if request.get("latency"):
            result["latency"] = step_latency(runner, seqs[0], init, LatencyConfig(**request["latency"]))
        return result
    except Exception as exc:  # noqa: BLE001 - reported as the streaming check's failure, the other checks stand
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return {"error": f"streaming run failed: {type(exc).__name__}: {first}"}
