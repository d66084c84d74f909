"""Streaming a step artifact, NumPy only: whole sequences with the state fed back, their figures, per-step timing.

Shared by the host's isolated check process (:mod:`edgest.streaming.worker`), the streaming check
(:mod:`edgest.streaming.check`) and device bundles, which copy this file beside edgest's NumPy-only
accuracy and latency modules (``edgest_check/`` in the bundle), so a phone's figures come from the
same code as the host's. It imports nothing from edgest but those two modules: the bundle's copies
when it is that copy, edgest's otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

try:  # a device bundle's copy (edgest_check/stepping.py): the NumPy-only modules copied beside it
    from .accuracy import compare  # type: ignore[import-not-found]
    from .latency import LatencyConfig, measure  # type: ignore[import-not-found]
except ImportError:  # inside edgest (edgest.streaming has no such modules)
    from edgest.checks.accuracy import compare
    from edgest.checks.latency import LatencyConfig, measure


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

    return measure(one, cfg)


def per_step(reference: list[np.ndarray], outputs: list[np.ndarray]) -> list[dict[str, float]]:
    """:func:`edgest.checks.accuracy.compare` at each step, over the sequences (arrays with the step axis first)."""
    steps = min(len(r) for r in reference)
    return [compare([r[t] for r in reference], [o[t] for o in outputs]) for t in range(steps)]


def stream_metrics(reference: list[np.ndarray], outputs: list[np.ndarray]) -> dict[str, Any]:
    """Pooled, per-step and drift figures of streamed ``outputs`` against the parallel ``reference``."""
    for r, o in zip(reference, outputs):
        if np.shape(r) != np.shape(o):
            raise ValueError(f"streamed outputs of shape {np.shape(o)} differ from the reference {np.shape(r)}")
    steps = per_step(reference, outputs)
    pooled = compare(reference, outputs)
    worst = min(steps, key=lambda m: m["sqnr_db"])
    out: dict[str, Any] = {
        "sqnr_db": worst["sqnr_db"], "top1_agreement": pooled["top1_agreement"], "max_abs": pooled["max_abs"],
        "cosine": pooled["cosine"], "sqnr_db_pooled": pooled["sqnr_db"], "worst_step": steps.index(worst),
        "steps": len(steps), "sequences": len(reference),
        "per_step_sqnr_db": [round(m["sqnr_db"], 3) for m in steps],
        "per_step_top1_agreement": [m["top1_agreement"] for m in steps],
        "first_step_sqnr_db": steps[0]["sqnr_db"], "last_step_sqnr_db": steps[-1]["sqnr_db"],
        "first_step_max_abs": steps[0]["max_abs"], "last_step_max_abs": steps[-1]["max_abs"],
        "drift_db": round(steps[0]["sqnr_db"] - steps[-1]["sqnr_db"], 3),
        "last_step_top1_agreement": steps[-1]["top1_agreement"],
    }
    if pooled.get("nonfinite"):
        out["nonfinite"] = pooled["nonfinite"]
    return out


def latency_metrics(figures: dict[str, Any] | None, step_seconds: float, load: dict[str, Any]) -> dict[str, Any]:
    """Per-step p50/p90, cold load, and the real-time factor (p50 / hop: below 1 keeps up with the stream)."""
    if not figures:
        return {}
    hop_ms = step_seconds * 1e3
    out = {"step_p50_ms": figures["p50_ms"], "step_p90_ms": figures["p90_ms"], "step_runs": figures["runs"],
           "hop_ms": hop_ms, "cold_load_ms": load.get("cold_load_ms")}
    if hop_ms > 0:
        out["real_time_factor"] = figures["p50_ms"] / hop_ms
        out["real_time_factor_p90"] = figures["p90_ms"] / hop_ms
    return out
