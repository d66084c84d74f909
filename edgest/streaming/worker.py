"""The isolated check process's streaming run: whole sequences step by step, the artifact's own state fed back.

For each sequence the state starts at its initial value; each step runs ``(x_t, *state)`` and the
outputs after the first become the next step's state. The first outputs of every step are written
to ``stream_outputs.npz`` (``q{i}``: steps first). Then, unless the latency protocol is off, one
continuous stream (the first sequence, over and over, state carried) is timed per step with the
shared protocol (:func:`edgest.checks.latency.measure`). NumPy and the standard library only, so
a device bundle can run it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgest.checks.latency import LatencyConfig, measure

#: what the parent writes beside ``inputs.npz``: ``q{i}`` step inputs per sequence, ``init{j}`` initial states
INPUTS = "stream.npz"
OUTPUTS = "stream_outputs.npz"


class StepRunner(Protocol):
    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...


def stream_sequence(runner: StepRunner, steps: np.ndarray, init: list[np.ndarray]) -> np.ndarray:
    """The runner's first output at every step of ``steps`` (step axis first), its state fed back; stacked."""
    state, outs = [np.asarray(a) for a in init], []
    for x in steps:
        y = runner.run([np.ascontiguousarray(x), *state])
        if len(y) != len(init) + 1:
            raise ValueError(f"the artifact returned {len(y)} outputs; a step returns 1 + {len(init)} state tensors")
        outs.append(np.asarray(y[0]))
        state = [np.ascontiguousarray(np.asarray(s, dtype=a.dtype)) for s, a in zip(y[1:], init)]
    return np.stack(outs)


def step_latency(runner: StepRunner, steps: np.ndarray, init: list[np.ndarray], cfg: LatencyConfig) -> dict[str, float]:
    """Per-step latency of one continuous stream: ``steps`` again and again, the state carried (restarted per pass)."""
    pos, state = [0], [list(init)]

    def one() -> None:
        if pos[0] == len(steps):
            pos[0], state[0] = 0, list(init)
        y = runner.run([np.ascontiguousarray(steps[pos[0]]), *state[0]])
        state[0] = [np.asarray(s) for s in y[1:]]
        pos[0] += 1

    from edgest.executors.timing import timing_turn

    with timing_turn():  # timings on this host take turns (edgest.executors.timing)
        return measure(one, cfg)


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
