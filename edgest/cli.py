"""The ``edgest`` command line: thin click commands over the Python API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from edgest.errors import EdgestError


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


#: columns of free text, which may fold onto several lines
_FREE_TEXT = ("description", "available", "registers", "value", "reason")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for c in columns:  # names, shapes and figures stay whole; only free text folds when the terminal is narrow
        table.add_column(c, no_wrap=c not in _FREE_TEXT, overflow="fold")
    for r in rows:
        table.add_row(*r)
    _console().print(table)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgest")
def cli() -> None:
    """edgest: compile video models for edge runtimes, checked against PyTorch."""


@cli.command("compile")
@click.option("--model", "model", required=True, help="Model name (see `edgest list models`).")
@click.option("--target", "target", required=True, help="Target name (see `edgest list targets`).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), help="state_dict saved with torch.save.")
@click.option("--input-shape", help="Static input shape, e.g. 1x3x16x224x224.")
@click.option("--out", "out", type=click.Path(path_type=Path), help="Run folder (default edgest-out/MODEL-TARGET).")
@click.option("--pass", "passes", multiple=True, help="Pass to run, repeatable, in order.")
@click.option("--precision", help="fp32, fp16, bf16 or int8 (adds the quantize pass) [default: the target's; fp32, Core ML fp16].")
@click.option("--calibration", type=click.Path(path_type=Path), help="Folder of .npy inputs or video files (PyAV) to calibrate int8 on (default: synthetic clips, or keyword glides for B,L,C models).")
@click.option("--calibration-size", type=click.IntRange(1, 100_000), help="Calibration inputs to use [default: 32].")
@click.option("--quant-skip", "quant_skip", multiple=True, help="Module to keep in float under int8 (e.g. fc), repeatable.")
@click.option("--target-option", "target_option", multiple=True, metavar="KEY=VALUE",
              help="Target option, repeatable (see the target's docs), e.g. tvm_target=aarch64.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256), help="Runtime threads for the checks.")
@click.option("--samples", default=8, show_default=True, type=click.IntRange(1, 10_000), help="Random inputs for the accuracy check.")
@click.option("--task-samples", type=click.IntRange(0, 100_000),
              help="Labelled synthetic clips or keyword glides for task top-1 (video and B,L,C models; 0: off) [default: 256 with --weights, else 0].")
@click.option("--quant-sensitivity", is_flag=True, help="int8: SQNR per quantised layer, worst first, in the report (one quantisation per layer).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def compile_cmd(model: str, target: str, weights: Path | None, input_shape: str | None, out: Path | None,
                passes: tuple[str, ...], precision: str | None, calibration: Path | None, calibration_size: int | None,
                quant_skip: tuple[str, ...], target_option: tuple[str, ...], threads: int, samples: int,
                task_samples: int | None, quant_sensitivity: bool, seed: int, force: bool, as_json: bool) -> int:
    """Compile MODEL for TARGET, check it against eager PyTorch, write the artifact and report."""
    from edgest.passes.options import parse_pass_arg
    from edgest.pipeline import compile as compile_model

    target_options = _target_options(target_option, [target]).get(target, {})
    pass_args = _with_quant_options([parse_pass_arg(p) for p in passes], precision, calibration, calibration_size, quant_skip,
                                    quant_sensitivity)
    with _console(stderr=True).status(f"compiling {model} for {target}…"):
        report = compile_model(model, target, passes=pass_args, weights=weights,
                               input_shape=input_shape, out_dir=out, precision=precision, threads=threads,
                               samples=samples, seed=seed, force=force, target_options=target_options,
                               task_samples=task_samples)
    out_dir = out or Path("edgest-out") / f"{model}-{target}"
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        from edgest.report.console import print_report

        print_report(report, out_dir)
    return 0 if report.status == "passed" else 1


def _target_options(items: tuple[str, ...], targets: list[str]) -> dict[str, dict[str, Any]]:
    """--target-option values, typed by each target's option table."""
    if not items:
        return {}
    from edgest.plugins import get_registry
    from edgest.target_options import parse_target_options

    registry = get_registry()
    return parse_target_options(items, [registry.target(t) for t in targets])


def _with_quant_options(passes: list[tuple[str, dict[str, Any]]], precision: str | None, calibration: Path | None,
                        size: int | None, skip: tuple[str, ...], sensitivity: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """Put --calibration/--calibration-size/--quant-skip/--quant-sensitivity into the quantize pass (added for --precision int8)."""
    from edgest.errors import BadInput

    extra: dict[str, Any] = {}
    if calibration is not None:
        extra["calibration"] = str(calibration)
    if size is not None:
        extra["calibration_size"] = size
    if skip:
        extra["skip"] = list(skip)
    if sensitivity:
        extra["sensitivity"] = True
    if not extra:
        return passes
    if precision != "int8" and not any(name == "quantize" for name, _ in passes):
        raise BadInput("--calibration, --calibration-size, --quant-skip and --quant-sensitivity apply to int8; add --precision int8")
    if not any(name == "quantize" for name, _ in passes):
        passes = [*passes, ("quantize", {"scheme": "int8"})]
    return [(name, {**opts, **extra} if name == "quantize" else opts) for name, opts in passes]


@cli.command("list")
@click.argument("what", required=False, type=click.Choice(["models", "targets", "passes", "plugins"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def list_cmd(what: str | None, as_json: bool) -> int:
    """List models, targets, passes and plugins, with availability."""
    from edgest.inventory import inventory

    data = inventory([what] if what else ["models", "targets", "passes", "plugins"])
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return 0
    for kind, rows in data.items():
        if not rows:
            _console().print(f"{kind}: (none registered)")
            continue
        cols = [c for c in rows[0] if not (kind == "models" and c == "family")]  # the name says it; JSON keeps it
        _table(kind, cols, [[_cell(c, r[c]) for c in cols] for r in rows])
    return 0


def _cell(column: str, value: Any) -> str:
    """A table cell: counts with thousands separators, MACs in G/M/k so small models don't read 0."""
    if value is None:
        return "?"
    if column == "macs" and isinstance(value, int):
        for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if value >= scale:
                return f"{value / scale:.3g} {unit}" if value < 100 * scale else f"{value / scale:.1f} {unit}"
        return str(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def doctor_cmd(as_json: bool) -> int:
    """Show Python, torch and toolchain versions, CPU and threads."""
    from edgest.inventory import doctor

    data = doctor()
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        _table("edgest doctor", ["item", "value"], [[k, str(v)] for k, v in data.items()])
    return 0


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@cli.command("bench")
@click.option("--models", required=True, help="Comma-separated model names.")
@click.option("--targets", required=True, help="Comma-separated target names.")
@click.option("--precisions", default="fp32", show_default=True, help="Comma-separated precisions.")
@click.option("--pass", "passes", multiple=True, help="Pass applied to every cell, repeatable.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("edgest-bench"), show_default=True)
@click.option("--weights", multiple=True, help="MODEL=FILE, repeatable.")
@click.option("--target-option", "target_option", multiple=True, metavar="[TARGET:]KEY=VALUE",
              help="Target option, repeatable; KEY=VALUE goes to every target that has KEY.")
@click.option("--no-cache", is_flag=True, help="Recompile every cell.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256))
@click.option("--min-sqnr", type=float, help="Budget: minimum SQNR (dB) for every cell.")
@click.option("--max-accuracy-drop", type=float, help="Budget: maximum top-1 agreement lost vs eager (points).")
@click.option("--max-latency-ms", help="Budget: p50 limit, global (20) or per target (onnx=20,executorch=30).")
@click.option("--json", "as_json", is_flag=True, help="Print the bench document as JSON.")
def bench_cmd(models: str, targets: str, precisions: str, passes: tuple[str, ...], out: Path, weights: tuple[str, ...],
              target_option: tuple[str, ...],
              no_cache: bool, threads: int, min_sqnr: float | None, max_accuracy_drop: float | None,
              max_latency_ms: str | None, as_json: bool) -> int:
    """Run a model x target x precision matrix; write bench.json, report.md and report.html."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgest.bench import Budget, over_budget, parse_latency_budget, run_bench
    from edgest.errors import BadInput

    wmap = {}
    for item in weights:
        name, eq, path = item.partition("=")
        if not eq:
            raise BadInput(f"malformed --weights '{item}'; write MODEL=FILE")
        wmap[name] = Path(path)
    budget = Budget(min_sqnr, max_accuracy_drop, parse_latency_budget(max_latency_ms))
    target_options = _target_options(target_option, _split(targets))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_console(stderr=True), transient=False) as progress:
        task = progress.add_task("bench", total=None)

        def on_cell(cell: Any, state: str, done: int, total: int) -> None:
            progress.update(task, total=total, completed=done, description=f"{cell.label}: {state}")

        doc = run_bench(_split(models), _split(targets), _split(precisions), out, passes=passes, weights=wmap,
                        use_cache=not no_cache, budget=budget, threads=threads, on_cell=on_cell,
                        target_options=target_options)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        rows = [[c["model"], c["target"], c["precision"], c["status"] + (" (cached)" if c["cached"] else ""),
                 f"{c['latency']['p50_ms']:.2f}" if (c.get("latency") or {}).get("p50_ms") else "-",
                 f"{c['accuracy']['sqnr_db']:.1f}" if (c.get("accuracy") or {}).get("sqnr_db") is not None else "-",
                 f"{c['seconds']:.1f}"] for c in doc["cells"]]
        _table(f"edgest bench → {out}/report.md, report.html", ["model", "target", "precision", "status", "p50 ms", "SQNR dB", "seconds"], rows)
    over = over_budget(doc)
    for line in over:
        click.echo(f"edgest: over budget: {line}", err=True)
    failed = [c for c in doc["cells"] if c["status"] != "passed"]
    return 1 if over or failed else 0


@cli.command("bundle")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Bundle folder to write.")
@click.option("--force", is_flag=True, help="Replace an existing bundle folder.")
def bundle_cmd(run_dir: Path, out: Path, force: bool) -> int:
    """Package a compile run for a device: artifact, inputs, expected outputs, run_on_device.py."""
    from edgest.bundle import build_bundle

    build_bundle(run_dir, out, force=force)
    click.echo(f"bundle written to {out}; on the device: python run_on_device.py, then edgest report merge {run_dir} device-report.json")
    return 0


@cli.group("report")
def report_group() -> None:
    """Work with reports."""


@report_group.command("merge")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.argument("device_reports", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def merge_cmd(folder: Path, device_reports: tuple[Path, ...]) -> int:
    """Fold device-report.json files into FOLDER's reports (a compile run or a bench)."""
    from edgest.bundle import merge_device_reports

    for line in merge_device_reports(folder, list(device_reports)):
        click.echo(line)
    return 0


def _register_plugin_commands() -> list[str]:
    from edgest.plugins import get_plugin_manager

    pm = get_plugin_manager()
    for impl in pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
            pm.load_errors.append(f"edgest: plugin '{impl.plugin_name}' failed to add commands: {exc}")
    return pm.load_errors


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, exit codes 0 (ok), 1 (failed check/unsupported), 2 (bad input), 130 (Ctrl-C)."""
    try:
        for line in _register_plugin_commands():
            click.echo(line, err=True)
        rv = cli.main(args=argv, prog_name="edgest", standalone_mode=False)
    except EdgestError as exc:
        click.echo(f"edgest: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("edgest: interrupted; nothing was written", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)
