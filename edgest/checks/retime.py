"""Time several compiled artifacts again, in one process and in turns, for fair ratios on a busy host.

Each compile's latency check runs in its own process, one after another; on a shared machine the load
changes between them, so their ratio can mislead (see :func:`edgest.checks.latency.measure_interleaved`).
Benchmarks that compare artifacts re-time them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.checks.latency import measure_interleaved

if TYPE_CHECKING:
    from edgest.plugins import Registry


@dataclass(frozen=True)
class Compiled:
    """One artifact to re-time: the target that made it (and its options), its file and input shape."""

    target: str
    path: Path
    input_shape: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


def retime(artifacts: Mapping[str, Compiled], threads: int = 1, rounds: int = 3,
           registry: Registry | None = None) -> dict[str, dict[str, float]]:
    """Load every artifact with its target's runner and time them in turns; stats per key (``p50_ms``...)."""
    import numpy as np

    from edgest.plugins import get_registry

    reg = registry or get_registry()
    runs = {}
    for key, a in artifacts.items():
        runner = reg.target(a.target)(**a.options).load(a.path, threads)
        _check_threads(a.target, getattr(runner, "threads", threads), threads)
        x = np.random.default_rng(0).standard_normal(a.input_shape).astype(np.float32)
        runs[key] = lambda runner=runner, x=x: runner.run([x])
    return measure_interleaved(runs, rounds)


def _check_threads(target: str, actual: Any, threads: int) -> None:
    """Refuse a runner whose runtime runs another thread count than asked (ExecuTorch's pool, sized once per
    process, keeps the first count), so it is never timed as if it ran ``threads``. As the runner contract says,
    0 means the runtime chooses; a runtime that caps the count at this host's cores (OpenVINO) is not refused."""
    import os

    capped = min(threads, os.cpu_count() or threads)
    if isinstance(actual, int) and actual not in (0, threads, capped):
        raise RuntimeError(f"target '{target}' runs {actual} thread(s), not {threads}: its runtime's thread pool was "
                           "sized earlier in this process; time each thread count in its own process")
