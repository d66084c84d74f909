"""The latency protocol shared by every target and by device bundles.

Warm-up, then timed runs until both a minimum count and a minimum duration are reached;
percentiles from the individual run times. NumPy and the standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyConfig:
    """How long to measure: warm-up runs, then at least ``min_runs`` and ``min_seconds``."""

    warmup: int = 5
    min_runs: int = 30
    min_seconds: float = 2.0
    max_runs: int = 10_000

    def __post_init__(self) -> None:
        """ValueError for a protocol that cannot run (plain Python: this module is copied into device bundles,
        where edgest is not installed)."""
        import math

        for name in ("warmup", "min_runs", "max_runs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"LatencyConfig({name}=...) must be a whole number of runs, 0 or more; got {value!r:.40}")
        if self.max_runs < 1:
            raise ValueError(f"LatencyConfig(max_runs=...) must be at least 1; got {self.max_runs}")
        s = self.min_seconds
        if not isinstance(s, (int, float)) or isinstance(s, bool) or not math.isfinite(s) or s < 0:
            raise ValueError(f"LatencyConfig(min_seconds=...) must be a finite number of seconds, 0 or more; got {s!r:.40}")


def measure(run: Callable[[], object], cfg: LatencyConfig = LatencyConfig(), *, warm: int = 0) -> dict[str, float]:
    """Time ``run`` with the shared protocol; milliseconds. ``warm``: runs of the same artifact on inputs of the same
    shapes just made (a check's accuracy runs), counted toward the warm-up; ``warmup`` in the result is every run
    before the timed ones."""
    if not isinstance(warm, int) or isinstance(warm, bool) or warm < 0:
        raise ValueError(f"measure(warm=...) must be a whole number of runs, 0 or more; got {warm!r:.40}")
    extra = max(0, cfg.warmup - warm)
    for _ in range(extra):
        run()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < cfg.max_runs and (len(times) < cfg.min_runs or time.perf_counter() - start < cfg.min_seconds):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    arr = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "mean_ms": float(arr.mean()),
        "std_ms": float(arr.std()),
        "min_ms": float(arr.min()),
        "runs": len(times),
        "warmup": warm + extra,
    }


#: per-turn protocol of :func:`measure_interleaved`: short turns, many of them
TURN = LatencyConfig(warmup=2, min_runs=10, min_seconds=0.5)


def measure_interleaved(runs: dict[str, Callable[[], object]], rounds: int = 3,
                        cfg: LatencyConfig = TURN) -> dict[str, dict[str, float]]:
    """Time several ``runs`` in turns, ``rounds`` times (A B C, then B C A, ...), so that a busy spell on a
    shared host falls on all of them alike; comparing runs measured one after the other in separate
    processes is what made one runtime look 1.4x slower than another here when, in turns, it was 0.99x.
    Per run: the median of its per-turn p50s (``p50_ms``), their min and max; milliseconds."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    keys = list(runs)
    p50s: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            p50s[k].append(measure(runs[k], cfg)["p50_ms"])
    return {k: {"p50_ms": float(np.median(v)), "min_p50_ms": min(v), "max_p50_ms": max(v), "rounds": rounds}
            for k, v in p50s.items()}
