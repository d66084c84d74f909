"""``edgest optimize``: the fastest faithful artifact for this host, searched through the bench.

:func:`optimize` builds the search space (:mod:`.space`), benches it (:mod:`.search`, cached cells),
judges every cell against the accuracy budget (:mod:`.frontier`), times the finalists again in turns
in one process (:mod:`.retiming`), copies the winner's run folder to ``OUT/winner`` (:mod:`.winner`)
and writes ``optimize.json``, ``optimize.md`` and ``optimize.html`` (:mod:`.writers`).
The optimize folder is a bench folder (``bench.json``, ``cells/``) with those files beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.bench import Budget
from edgest.errors import BadInput, CheckFailed
from edgest.optimize.search import Settings
from edgest.optimize.space import Group, SearchSpace, build_space
from edgest.optimize.writers import OPTIMIZE_SCHEMA_VERSION

if TYPE_CHECKING:
    from edgest.executors import Executor
    from edgest.plugins import Registry

__all__ = ["Group", "SearchSpace", "Settings", "budget_text", "build_space", "optimize"]


def budget_text(budget: Budget) -> str:
    """The accuracy (and latency) budget in words, for the reports."""
    parts = ["each precision's own accuracy limits (the cell's accuracy check passed)"]
    if budget.min_sqnr_db is not None:
        parts.append(f"SQNR ≥ {budget.min_sqnr_db:g} dB")
    if budget.max_accuracy_drop is not None:
        parts.append(f"top-1 agreement drop ≤ {budget.max_accuracy_drop:g} pt")
    for target, ms in budget.max_latency_ms.items():
        parts.append(f"p50 ≤ {ms:g} ms" + ("" if target == "*" else f" ({target})"))
    return ", and ".join(parts)


def optimize(model: str, out_dir: Path, *, targets: Sequence[str] | None = None, precisions: Sequence[str] | None = None,
             budget: Budget | None = None, settings: Settings | None = None, finalists: int = 3, rounds: int = 3,
             executor: Executor | None = None, registry: Registry | None = None,
             listen: Callable[[Group, tuple[str, ...]], tuple[Any, Any]] | None = None) -> dict[str, Any]:
    """Search ``targets`` × ``precisions`` × pass lists (:attr:`Settings.pass_sets`) for ``model`` on this host; the
    optimize document (also written to ``out_dir``).

    Raises CheckFailed (after writing the frontier) when no cell is within ``budget``; BadInput for
    conflicting budgets, a folder edgest may not write, nothing searchable, or a model no check could judge
    (it ignores its input at its weights: EMOv2 at init) without ``Settings.stand_in_weights``.
    """
    from edgest.folder_lock import claimed
    from edgest.outdir import check_output
    from edgest.plugins import get_registry

    t0 = time.perf_counter()
    reg, budget, settings = registry or get_registry(), budget or Budget(), settings or Settings()
    check_budget(budget)
    if settings.counts[0] != settings.threads:
        raise BadInput(f"the bench's thread count ({settings.threads}) must be the first of thread_counts "
                       f"{list(settings.counts)}; give threads={settings.counts[0]}")
    reg.model(model)
    space = build_space(reg, targets, precisions)
    out_dir = Path(out_dir).absolute()
    check_output(out_dir, kind="bench")  # new, empty or a bench (optimize) folder: before any cell compiles
    check_output(out_dir / "winner", force=True, kind="run")  # an earlier winner is replaced; anything else is refused
    check_judgeable(reg, model, settings)
    with claimed(out_dir):  # one writer, the bench it runs included, until its reports are written
        return _search(model, out_dir, space, settings, budget, rounds, finalists, executor, reg, listen, t0)


def _search(model: str, out_dir: Path, space: SearchSpace, settings: Settings, budget: Budget, rounds: int,
            finalists: int, executor: Executor | None, reg: Registry, listen: Any, t0: float) -> dict[str, Any]:
    """The search of :func:`optimize` once its arguments are checked and its folder claimed."""
    from edgest.optimize.frontier import frontier, no_winner_reason
    from edgest.optimize.retiming import retime_finalists
    from edgest.optimize.search import run_search
    from edgest.optimize.winner import drop_winner, write_winner
    from edgest.optimize.writers import write_optimize_reports

    bench = run_search(model, space, out_dir, settings, budget, executor=executor, registry=reg, listen=listen)
    # one thread count: the fastest few by the bench's p50; several: every qualifying cell, since the bench timed
    # them at the first count only and a cell may scale with threads better than the ones ahead of it there
    rows = frontier(bench["cells"], budget, finalists if len(settings.counts) == 1 else len(bench["cells"]))
    note = retime_finalists(rows, out_dir, settings.counts, rounds, reg)
    win = next((r for r in rows if r["winner"]), None)
    if win is not None:
        write_winner(out_dir / win["run_dir"], out_dir / "winner")
    else:
        drop_winner(out_dir / "winner")  # an earlier search's winner is not this one's
    doc = _document(model, space, budget, settings, rows, win, note, rounds, finalists, bench)
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    if win is None:
        doc["no_winner"] = no_winner_reason(rows, budget)
    write_optimize_reports(doc, bench["cells"], out_dir)
    if win is None:
        raise CheckFailed(f"no artifact qualifies: {doc['no_winner']} (frontier: {out_dir / 'optimize.md'})")
    return doc


def check_judgeable(registry: Registry, model: str, settings: Settings) -> None:
    """BadInput, before any cell, for a model that ignores its input at the weights the search would judge it at.

    The bench would refuse every cell of it with the bench's own options in the fix; this names optimize's.
    """
    from edgest.responsive import refusal, unresponsive_reason

    if settings.stand_in_weights:
        return
    why = unresponsive_reason(registry.model(model), settings.weights)
    if why is not None:
        raise BadInput(refusal(model, why, settings.weights is not None, "optimize"))


def winners_by_threads(rows: list[dict[str, Any]], counts: Sequence[int]) -> dict[str, str]:
    """Each thread count's fastest finalist in turns (its :func:`~edgest.optimize.frontier.cell_label`), for a
    device that will run at that count; empty where the re-time did not run."""
    from edgest.optimize.frontier import cell_label

    out = {}
    for t in map(str, counts):
        timed = [r for r in rows if t in (r.get("retime_by_threads") or {})]
        if timed:
            out[t] = cell_label(min(timed, key=lambda r: r["retime_by_threads"][t]))
    return out


def check_budget(budget: Budget) -> None:
    """One accuracy budget at a time: SQNR and top-1 drop measure different things, and both at once is ambiguous."""
    if budget.min_sqnr_db is not None and budget.max_accuracy_drop is not None:
        raise BadInput("--min-sqnr and --max-accuracy-drop are two accuracy budgets; give one of them "
                       "(min_sqnr_db= or max_accuracy_drop=)")


def _document(model: str, space: SearchSpace, budget: Budget, settings: Settings, rows: list[dict[str, Any]],
              win: dict[str, Any] | None, note: str, rounds: int, finalists: int, bench: dict[str, Any]) -> dict[str, Any]:
    from edgest.host import isa_summary
    from edgest.optimize.frontier import cell_label

    winner = None if win is None else {**{k: win[k] for k in ("target", "precision", "passes", "p50_ms", "retime_p50_ms",
                                                               "sqnr_db", "exact", "top1_agreement", "speedup_vs_eager")},
                                        "threads": win["retime_threads"] or settings.threads,
                                        "run_dir": "winner", "cell_run_dir": win["run_dir"]}
    return {
        "schema_version": OPTIMIZE_SCHEMA_VERSION, "kind": "edgest-optimize",
        "created": datetime.now(UTC).isoformat(timespec="seconds"), "host": bench["host"],
        "isa_summary": isa_summary(),
        "settings": {"model": model, "targets": space.targets, "precisions": space.precisions,
                     "groups": [asdict(g) for g in space.groups], "skipped": list(space.skipped),
                     "threads": settings.threads, "thread_counts": list(settings.counts), "samples": settings.samples, "passes": list(settings.passes),
                     "try_passes": list(settings.try_passes),
                     "weights": bench["settings"]["weights"].get(model), "use_cache": settings.use_cache,
                     "budget": asdict(budget), "budget_text": budget_text(budget), "finalists": finalists},
        "retime": {"threads": settings.threads, "thread_counts": list(settings.counts), "rounds": rounds, "note": note,
                   "ratios": {cell_label(r): r["retime_ratio"] for r in rows if r["retime_ratio"] is not None},
                   "winners_by_threads": winners_by_threads(rows, settings.counts)},
        "winner": winner, "no_winner": "", "bench": "bench.json", "cells": rows,
    }
