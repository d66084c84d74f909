"""``edgest debug RUN_DIR``: which PyTorch module made the artifact differ from eager (thin over :func:`edgest.debug.debug_run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command("debug")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", "model", metavar="FILE.py:CLASS", help="The user model a run compiled (report.json holds only its name).")
@click.option("--samples", default=2, show_default=True, type=click.IntRange(1, 64), help="Seeded inputs to compare on.")
@click.option("--target-option", "target_option", multiple=True, metavar="KEY=VALUE",
              help="Target option the run was compiled with (report.json records only the precision), repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def debug_cmd(run_dir: Path, model: str | None, samples: int, target_option: tuple[str, ...], as_json: bool) -> int:
    """Compare a compiled artifact with eager PyTorch module by module; name the module where the error starts.

    Writes debug.json, debug.md and debug-sqnr.svg (SQNR along depth) into RUN_DIR.
    """
    from edgest.debug import debug_run
    from edgest.fsio import dumps_json
    from edgest.report.writers import read_run

    options = None
    if target_option:
        from edgest.cli import _target_options

        target = read_run(run_dir).target
        options = _target_options(target_option, [target]).get(target)
    result = debug_run(run_dir, model=model, samples=samples, target_options=options)
    if as_json:
        click.echo(dumps_json(result.to_dict()), nl=False)
        return 0
    click.echo(f"{result.model} on {result.target} ({result.precision}): {len(result.modules)} module outputs compared, "
               f"limit {result.limit_db:g} dB")
    width = max((len(m.module) for m in result.modules), default=6)
    for m in result.modules:
        mark = "  <- culprit" if m.module == result.culprit else ""
        click.echo(f"  {m.module:<{width}}  {m.sqnr_db:7.1f} dB  drop {m.drop_db:6.1f}{mark}")
    click.echo(("culprit: " if result.culprit else "no culprit: ") + result.verdict)
    click.echo(f"written: {', '.join(str(run_dir / f) for f in result.files.values())}")
    return 0


def after_compile(plan: Any, report: Any, wanted: bool | None) -> None:
    """``compile --debug``: the per-module comparison after the checks, always when ``wanted``, by default
    (``wanted`` None) when the accuracy check failed, never when ``wanted`` is False. Findings go into the run
    folder; one line on stderr says where the error starts."""
    from dataclasses import replace

    from edgest.debug.run import debug_plan, supports_intermediates
    from edgest.debug.write import write_debug
    from edgest.errors import EdgestError

    accuracy = next((c for c in report.checks if c.kind == "accuracy"), None)
    failed = accuracy is not None and accuracy.status == "failed"
    if wanted is False or (wanted is None and not failed) or report.artifact is None or plan.streaming:
        return
    if not supports_intermediates(type(plan.target)):
        if wanted:
            click.echo(f"edgest: note: per-layer debug not supported by target '{plan.target.name}'", err=True)
        return
    quick = replace(plan, checks=replace(plan.checks, samples=min(plan.checks.samples, 2)))
    run_dir = Path(report.run_dir)
    try:
        result = write_debug(debug_plan(quick, run_dir / report.artifact.path, report), run_dir)
    except EdgestError as exc:
        click.echo(f"edgest: note: per-layer debug could not run: {exc}", err=True)
        return
    lead = f"debug: error starts at {result.culprit}" if result.culprit else "debug:"
    click.echo(f"{lead} ({result.verdict}); see {run_dir / result.files['markdown']}", err=True)
