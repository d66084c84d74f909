"""The finalists timed again, in turns in one process (:func:`edgest.checks.retime.retime`), and the winner picked.

Each bench cell was timed in its own process, one after another; on a shared host the load moves
between them, so the bench's p50s alone can rank two close artifacts wrongly. The finalists are
loaded with their targets' runners (at the options their cells compiled with) and timed in turns,
holding the host's timing lock (:func:`edgest.executors.timing.timing_turn`);
the fastest in turns wins. They are timed in a spawned process per thread count (a crashing runtime takes
only that process with it, and the search's result stays and names why; a runtime whose thread pool is sized
once per process runs each count at that count). With several thread counts (``--threads 1,2``) the
finalists are timed in turns at each; a finalist's figures are those of its fastest count
(``retime_threads``; every count's p50 in ``retime_by_threads``). Ratios: each finalist's p50 in turns over the winner's
(``retime_ratio``) and over its own bench p50 (``retime_vs_bench``, how much the load moved).
"""

from __future__ import annotations

from collections.abc import Sequence
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


def retime_finalists(rows: list[dict[str, Any]], bench_dir: Path, threads: int | Sequence[int], rounds: int = 3,
                     registry: Registry | None = None) -> str:
    """Time the finalists in turns at each thread count, fill their ``retime_*`` fields and mark the winner (the
    fastest finalist at its fastest count); '' or why the re-time could not run (then the winner is the finalist
    fastest in the bench, and the reason is recorded). The bench timed every cell at the first count."""
    from edgest.plugins import get_registry

    reg, counts = registry or get_registry(), [threads] if isinstance(threads, int) else list(threads)
    finalists = [r for r in rows if r["finalist"]]
    if not finalists:
        return ""
    keys = {_key(r): r for r in finalists}
    try:
        artifacts = {k: compiled(r, bench_dir, reg) for k, r in keys.items()}
        if reg is get_registry():
            by_count = _in_child(artifacts, counts, rounds)
        else:  # a registry of the caller's own cannot be rebuilt in another process
            by_count = timed_per_count(artifacts, counts, rounds, reg)
    except Exception as exc:  # noqa: BLE001 - a runtime that fails to load again must not lose the search's result
        from edgest.capture import first_line

        min(finalists, key=lambda r: r["p50_ms"])["winner"] = True
        return (f"re-time in turns failed ({type(exc).__name__}: {first_line(exc)[:200]}); "
                "the winner is the fastest in the bench")
    for k, r in keys.items():
        _fill(r, {t: by_count[t][k] for t in counts}, counts[0])
    winner = min(finalists, key=lambda r: (r["retime_p50_ms"], r["p50_ms"]))
    winner["winner"] = True
    for r in finalists:
        r["retime_ratio"] = round(r["retime_p50_ms"] / winner["retime_p50_ms"], 3)
    return ""


def _fill(row: dict[str, Any], stats: dict[int, dict[str, float]], bench_threads: int) -> None:
    """A finalist's re-time fields: its p50 at every count, and its fastest count's figures."""
    best = min(stats, key=lambda t: stats[t]["p50_ms"])
    row["retime_by_threads"] = {str(t): s["p50_ms"] for t, s in stats.items()}
    row["retime_threads"] = best
    row["retime_p50_ms"] = stats[best]["p50_ms"]
    row["retime_min_p50_ms"], row["retime_max_p50_ms"] = stats[best]["min_p50_ms"], stats[best]["max_p50_ms"]
    row["retime_vs_bench"] = round(stats[bench_threads]["p50_ms"] / row["p50_ms"], 3)  # same count as the bench


def timed_in_turns(artifacts: dict[str, Compiled], threads: int, rounds: int,
                   registry: Registry | None = None) -> dict[str, dict[str, float]]:
    """:func:`~edgest.checks.retime.retime` holding the host's timing lock, as every edgest timing holds it."""
    from edgest.checks.retime import retime
    from edgest.executors.timing import timing_turn

    with timing_turn():
        return retime(artifacts, threads=threads, rounds=rounds, registry=registry)


def timed_per_count(artifacts: dict[str, Compiled], counts: Sequence[int], rounds: int,
                    registry: Registry | None = None) -> dict[int, dict[str, dict[str, float]]]:
    """:func:`timed_in_turns` at each thread count in ``counts``, in this process (the runtimes loaded again for
    each; a runtime whose thread pool is sized once per process fails the second count, naming it)."""
    return {t: timed_in_turns(artifacts, t, rounds, registry) for t in counts}


def _in_child(artifacts: dict[str, Compiled], counts: Sequence[int], rounds: int) -> dict[int, dict[str, dict[str, float]]]:
    """:func:`timed_in_turns` in a spawned process per thread count, with the installed plugins: a runtime that
    crashes, prints from native code or leaves threads behind (one starts a thread pool on import) does so there,
    not here; and one that sizes its thread pool once per process (ExecuTorch's) runs each count at that count."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    out = {}
    for t in counts:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            out[t] = pool.submit(timed_in_turns, artifacts, t, rounds).result()
    return out


def _key(row: dict[str, Any]) -> str:
    return " / ".join([row["target"], row["precision"], *row["passes"]])
