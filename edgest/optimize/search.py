"""The search itself: one :func:`edgest.bench.run_bench` per group of the search space, into one bench folder.

Every cell is an ordinary bench cell (cached by its key, run by the chosen executor), so a second
optimize over the same folder reuses every cell it can. The groups' documents are merged into one
bench document (the optimize folder's ``bench.json``, ``report.md`` and ``report.html``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.bench import Budget, add_speedups, run_bench
from edgest.checks.latency import LatencyConfig
from edgest.optimize.space import Group, SearchSpace

if TYPE_CHECKING:
    from edgest.executors import Executor
    from edgest.plugins import Registry


@dataclass(frozen=True)
class Settings:
    """How every cell of the search compiles and is checked (the bench's own settings)."""

    #: the runtime threads every cell is benched at (the first of :attr:`thread_counts`)
    threads: int = 1
    #: every count the finalists are timed at again (``--threads 1,2``); empty: ``threads`` alone
    thread_counts: tuple[int, ...] = ()
    samples: int = 8
    passes: tuple[str, ...] = ()
    #: passes searched as an axis: every cell is benched without and with each, and each combination
    try_passes: tuple[str, ...] = ()
    weights: Path | None = None
    #: a model that ignores its input at its init (EMOv2) is benched on untrained stand-in weights (accuracy judged,
    #: task accuracy not), as ``edgest bench --stand-in-weights``
    stand_in_weights: bool = False
    use_cache: bool = True
    latency: LatencyConfig = field(default_factory=LatencyConfig)

    @property
    def counts(self) -> tuple[int, ...]:
        """The thread counts searched: :attr:`thread_counts`, or :attr:`threads` alone."""
        return self.thread_counts or (self.threads,)

    @property
    def pass_sets(self) -> list[tuple[str, ...]]:
        """The pass lists searched: ``passes``, then ``passes`` with each non-empty combination of ``try_passes``."""
        from itertools import combinations

        tried = [c for n in range(len(self.try_passes) + 1) for c in combinations(self.try_passes, n)]
        return [(*self.passes, *c) for c in tried]


def run_search(model: str, space: SearchSpace, out_dir: Path, settings: Settings, budget: Budget, *,
               executor: Executor | None = None, registry: Registry | None = None,
               listen: Callable[[Group, tuple[str, ...]], tuple[Any, Any]] | None = None) -> dict[str, Any]:
    """Bench every group with every pass list (:attr:`Settings.pass_sets`) into ``out_dir``; the merged bench
    document (also written there as bench.json).

    ``listen(group, passes)`` gives the ``on_cell`` and ``on_stage`` listeners of that bench (progress).
    """
    from edgest.report.bench_writers import write_bench_reports

    docs = []
    for passes, group in ((p, g) for p in settings.pass_sets for g in space.groups):
        on_cell, on_stage = listen(group, passes) if listen else (None, None)
        docs.append(run_bench([model], group.targets, group.precisions, out_dir, passes=passes,
                              weights={model: settings.weights} if settings.weights else None,
                              use_cache=settings.use_cache, budget=budget, threads=settings.threads,
                              samples=settings.samples, latency=settings.latency, registry=registry,
                              on_cell=on_cell, on_stage=on_stage, executor=executor,
                              stand_in_weights=settings.stand_in_weights))
    doc = merge(docs, space)
    write_bench_reports(doc, out_dir)
    return doc


def merge(docs: list[dict[str, Any]], space: SearchSpace) -> dict[str, Any]:
    """One bench document from the groups': every searched cell once, the eager reference once, speed-ups redone."""
    cells: list[dict[str, Any]] = [c for d in docs for c in d["cells"] if c["in_matrix"]]
    searched = {c["run_dir"] for c in cells}
    for d in docs:  # a group without an eager fp32 cell got the reference added; keep it once, unless searched
        for c in d["cells"]:
            if not c["in_matrix"] and c["run_dir"] not in searched:
                searched.add(c["run_dir"])
                cells.append(c)
    add_speedups(cells)
    base = docs[-1]
    settings = {**base["settings"], "targets": space.targets, "precisions": space.precisions}
    return {**base, "settings": settings, "cells": cells}
