"""``edgest optimize``: the fastest faithful artifact for this host (a thin layer over :func:`edgest.optimize.optimize`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgest.cli_usage import FiniteFloat


class ThreadCounts(click.ParamType):
    """``1`` or ``1,2``: distinct thread counts from 1 to 256, in the order given."""

    name = "N[,N...]"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        parts = [p.strip() for p in str(value).split(",")]
        if not all(p.isdigit() and 1 <= int(p) <= 256 for p in parts):
            self.fail(f"{value!r} is not a thread count or a list of them; write e.g. 1 or 1,2 (each 1 to 256)", param, ctx)
        counts = tuple(int(p) for p in parts)
        if len(set(counts)) != len(counts):
            self.fail(f"{value!r} names a thread count twice; give each count once (e.g. 1,2)", param, ctx)
        return counts


def _print(doc: dict[str, Any], out: Path) -> None:
    """The frontier as a table, with the summary lines (host, budget, winner, skipped) under it."""
    from edgest.cli import _console, _table
    from edgest.optimize.writers import (
        summary_lines,
        table_head,
        table_rows,
        thread_counts,
    )

    counts = thread_counts(doc)
    _table(f"edgest optimize → {out}/optimize.md, optimize.html", table_head(counts), table_rows(doc["cells"], counts))
    console = _console()
    for line in summary_lines(doc):
        console.print(line, soft_wrap=True, markup=False)


@click.command("optimize")
@click.option("--model", "model", required=True, help="Model name (see `edgest list models`).")
@click.option("--targets", help="Comma-separated targets to search [default: every target available on this host].")
@click.option("--precisions", help="Comma-separated precisions [default: fp32,int8, plus bf16/fp16 where this CPU has "
                                   "them]; each target is searched at those it supports.")
@click.option("--pass", "passes", multiple=True, help="Pass applied to every cell, repeatable.")
@click.option("--try-pass", "try_passes", multiple=True, metavar="NAME[:k=v,...]",
              help="Pass searched as an axis, repeatable: every cell is benched without it and with it (and with "
                   "each combination of the --try-pass passes).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), help="The model's weights file.")
@click.option("--stand-in-weights", is_flag=True,
              help="A model that ignores its input at its init (EMOv2) is searched on untrained stand-in weights: "
                   "accuracy judged, task accuracy not (as for bench).")
@click.option("--min-sqnr", type=FiniteFloat(), help="Accuracy budget: minimum SQNR vs eager (dB).")
@click.option("--max-accuracy-drop", type=FiniteFloat(0, 100), help="Accuracy budget: maximum top-1 agreement lost vs eager (points).")
@click.option("--max-latency-ms", help="Latency budget: p50 limit, global (20) or per target (onnx=20,executorch=30).")
@click.option("--threads", default="1", show_default=True, type=ThreadCounts(),
              help="Runtime threads: one count (1), or several (1,2) to search as an axis: cells are benched at the "
                   "first, every qualifying cell is timed again in turns at each, and the winner is the fastest "
                   "cell at its fastest count.")
@click.option("--samples", default=8, show_default=True, type=click.IntRange(1, 10_000), help="Random inputs for each cell's accuracy check.")
@click.option("--finalists", default=3, show_default=True, type=click.IntRange(1, 32),
              help="Fastest qualifying cells timed again in turns in one process; the fastest there wins.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1, 100), help="Rounds of turns for the finalists.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("edgest-optimize"), show_default=True)
@click.option("--no-cache", is_flag=True, help="Recompile every cell.")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "pool", "ray"]),
              help="Where cells run, as for bench (docs/executors.md).")
@click.option("--jobs", type=click.IntRange(1, 1024), help="--executor pool: processes compiling cells at once [default: the CPUs].")
@click.option("--address", help="--executor ray: the cluster [default: auto].")
@click.option("--json", "as_json", is_flag=True, help="Print the optimize document as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Show no progress, only warnings and the result.")
@click.option("--verbose", "-v", is_flag=True, help="Show more progress: each pass and sub-step.")
def optimize_cmd(model: str, targets: str | None, precisions: str | None, passes: tuple[str, ...],
                 try_passes: tuple[str, ...], weights: Path | None, stand_in_weights: bool,
                 min_sqnr: float | None, max_accuracy_drop: float | None, max_latency_ms: str | None, threads: tuple[int, ...],
                 samples: int, finalists: int, rounds: int, out: Path, no_cache: bool, executor: str, jobs: int | None,
                 address: str | None, as_json: bool, quiet: bool, verbose: bool) -> int:
    """Search targets x precisions for MODEL on this host through the bench (cached); write the fastest
    artifact within the accuracy budget to OUT/winner and the whole frontier to OUT/optimize.{json,md,html}.

    Without a budget, a cell qualifies when its own precision's accuracy check passed. The fastest
    qualifying cells are timed again in turns in one process; the fastest there wins.
    """
    from edgest import progress
    from edgest.bench import Budget, parse_latency_budget
    from edgest.cli import _verbosity
    from edgest.executors import get_executor
    from edgest.fsio import dumps_json
    from edgest.optimize import build_space, check_budget, optimize
    from edgest.optimize.search import Settings
    from edgest.plugins import get_registry
    from edgest.validate import check_passes, name_list

    registry = get_registry()
    registry.model(model)
    target_list = name_list("--targets", targets, "eager,onnx") if targets is not None else None
    precision_list = name_list("--precisions", precisions, "fp32,int8") if precisions is not None else None
    space = build_space(registry, target_list, precision_list)  # unknown names, nothing available: one line
    check_passes((*passes, *try_passes), registry)
    if set(passes) & set(try_passes):
        from edgest.errors import BadInput

        raise BadInput(f"pass '{min(set(passes) & set(try_passes))}' is both applied (--pass) and searched "
                       "(--try-pass); give it once")
    if weights is not None:
        from edgest.errors import BadInput
        from edgest.weights.files import why_not_a_file

        why = why_not_a_file(str(weights))
        if why:
            raise BadInput(f"weights file '{weights}' {why}; pass --weights a .pt, .pth or .safetensors file")
    budget = Budget(min_sqnr, max_accuracy_drop, parse_latency_budget(max_latency_ms, space.targets))
    check_budget(budget)
    runner = get_executor(executor, jobs=jobs, address=address)
    from edgest.outdir import check_output

    check_output(out, kind="bench")
    settings = Settings(threads=threads[0], thread_counts=threads, samples=samples, passes=passes,
                        try_passes=try_passes, weights=weights, stand_in_weights=stand_in_weights,
                        use_cache=not no_cache)
    cells = space.size * len(settings.pass_sets)
    shown = progress.display(f"optimize {model}: {cells} cells into {out}", _verbosity(quiet, verbose), hold="pre-flight")
    with progress.showing(shown):
        doc = optimize(model, out, targets=target_list, precisions=precision_list, budget=budget, settings=settings,
                       finalists=finalists, rounds=rounds, executor=runner, registry=registry,
                       listen=lambda group, pass_list: _listeners(shown, model, group, pass_list, out, not no_cache))
    if as_json:
        click.echo(dumps_json(doc), nl=False)
    else:
        _print(doc, out)
    return 0


def _listeners(shown: Any, model: str, group: Any, passes: tuple[str, ...], out: Path, cached: bool) -> tuple[Any, Any]:
    """A bench progress line per group (its cells, ETA from their past timings)."""
    from edgest import progress
    from edgest.bench import matrix, reference_cells

    cells = matrix([model], group.targets, group.precisions, passes) + reference_cells([model], group.targets, group.precisions)
    watch = progress.BenchProgress(shown, [progress.cell_estimate(out / "cells" / c.folder, cached) for c in cells])
    return watch.on_cell, watch.stage
