"""The finalists timed again, in turns in one process (:func:`edgest.checks.retime.retime`), and the winner picked.

Each bench cell was timed in its own process, one after another; on a shared host the load moves
between them, so the bench's p50s alone can rank two close artifacts wrongly. The finalists are
loaded with their targets' runners (at the options their cells compiled with) and timed in turns,
holding the host's timing lock (:func:`edgest.executors.timing.timing_turn`);
the fastest in turns wins. They are timed in one spawned process (a crashing runtime takes only that
process with it; the search's result stays and names why). Ratios: each finalist's p50 in turns over the winner's
(``retime_ratio``) and over its own bench p50 (``retime_vs_bench``, how much the load moved).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgest.checks.retime import Compiled
    from edgest.plugins import Registry


def compiled(row: dict[str, Any], bench_dir: Path, registry: Registry) -> Compiled:
    """The finalist's artifact as :func:`~edgest.checks.retime.retime` loads it: the target built with the
    options its compile resolved (a float precision is the target's own option, as :func:`edgest.plan` passes it)."""
    from edgest.checks.retime import Compiled
    from edgest.plan import _target
    from edgest.report.writers import read_run

    run_dir = bench_dir / row["run_dir"]
    report = read_run(run_dir)
    assert report.artifact is not None  # a finalist passed its checks: it has an artifact
    options = _target(registry.target(row["target"]), row["precision"], {}).options
    return Compiled(row["target"], run_dir / report.artifact.path, tuple(report.model.input.shape), dict(options))


def retime_finalists(rows: list[dict[str, Any]], bench_dir: Path, threads: int, rounds: int = 3,
                     registry: Registry | None = None) -> str:
    """Time the finalists in turns, fill their ``retime_*`` fields and mark the winner; '' or why the re-time
    could not run (then the winner is the finalist fastest in the bench, and the reason is recorded)."""
    from edgest.plugins import get_registry

    reg = registry or get_registry()
    finalists = [r for r in rows if r["finalist"]]
    if not finalists:
        return ""
    keys = {_key(r): r for r in finalists}
    try:
        artifacts = {k: compiled(r, bench_dir, reg) for k, r in keys.items()}
        if reg is get_registry():
            stats = _in_child(artifacts, threads, rounds)
        else:  # a registry of the caller's own cannot be rebuilt in another process
            stats = timed_in_turns(artifacts, threads, rounds, reg)
    except Exception as exc:  # noqa: BLE001 - a runtime that fails to load again must not lose the search's result
        from edgest.capture import first_line

        min(finalists, key=lambda r: r["p50_ms"])["winner"] = True
        return (f"re-time in turns failed ({type(exc).__name__}: {first_line(exc)[:200]}); "
                "the winner is the fastest in the bench")
    for k, r in keys.items():
        r["retime_p50_ms"] = stats[k]["p50_ms"]
        r["retime_min_p50_ms"], r["retime_max_p50_ms"] = stats[k]["min_p50_ms"], stats[k]["max_p50_ms"]
        r["retime_vs_bench"] = round(stats[k]["p50_ms"] / r["p50_ms"], 3)
    winner = min(finalists, key=lambda r: (r["retime_p50_ms"], r["p50_ms"]))
    winner["winner"] = True
    for r in finalists:
        r["retime_ratio"] = round(r["retime_p50_ms"] / winner["retime_p50_ms"], 3)
    return ""


def timed_in_turns(artifacts: dict[str, Compiled], threads: int, rounds: int,
                   registry: Registry | None = None) -> dict[str, dict[str, float]]:
    """:func:`~edgest.checks.retime.retime` holding the host's timing lock, as every edgest timing holds it."""
    from edgest.checks.retime import retime
    from edgest.executors.timing import timing_turn

    with timing_turn():
        return retime(artifacts, threads=threads, rounds=rounds, registry=registry)


def _in_child(artifacts: dict[str, Compiled], threads: int, rounds: int) -> dict[str, dict[str, float]]:
    """:func:`timed_in_turns` in one spawned process with the installed plugins: a runtime that crashes, prints
    from native code or leaves threads behind (one starts a thread pool on import) does so there, not here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(timed_in_turns, artifacts, threads, rounds).result()


def _key(row: dict[str, Any]) -> str:
    return " / ".join([row["target"], row["precision"], *row["passes"]])
