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


def measure(run: Callable[[], object], cfg: LatencyConfig = LatencyConfig()) -> dict[str, float]:
    """Time ``run`` with the shared protocol; milliseconds."""
    for _ in range(cfg.warmup):
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
        "warmup": cfg.warmup,
    }
