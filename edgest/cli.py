"""The ``edgest`` command line: thin click commands over the Python API."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from edgest.cli_usage import SEED, FiniteFloat
from edgest.config import META as CONFIG_META
from edgest.config import config_option
from edgest.errors import EdgestError
from edgest.fsio import dumps_json


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _verbosity_options(f: Any) -> Any:
    """--quiet and --verbose: how much progress a long command shows on stderr."""
    f = click.option("--verbose", "-v", is_flag=True, help="Show more progress: each pass and sub-step.")(f)
    return click.option("--quiet", "-q", is_flag=True, help="Show no progress, only warnings and the result.")(f)


def _verbosity(quiet: bool, verbose: bool) -> Any:
    if quiet and verbose:
        from edgest.errors import BadInput

        raise BadInput("--quiet and --verbose contradict each other; give one of them")
    return "quiet" if quiet else ("verbose" if verbose else "normal")


#: columns of free text, which may fold onto several lines
_FREE_TEXT = ("description", "available", "registers", "value", "reason", "status", "options")
#: lists that fold at this width even off a terminal: one plugin registering 25 models padded every row to 600 columns
_LIST_WIDTH = {"registers": 96, "options": 96}


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for c in columns:  # names, shapes and figures stay whole; only free text folds when the terminal is narrow
        table.add_column(c, no_wrap=c not in _FREE_TEXT, overflow="fold", max_width=_LIST_WIDTH.get(c))
    for r in rows:
        table.add_row(*r)
    from edgest.report.console import print_table

    print_table(table, _console())  # off a terminal at full width; on a narrow one only free text wraps


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgest")
def cli() -> None:
    """edgest: compile video models for edge runtimes, checked against PyTorch."""


@cli.command("compile")
@config_option
@click.option("--model", "model", required=True, metavar="NAME|FILE.py:CLASS",
              help="Model name (see `edgest list models`), or your own nn.Module as path/to/file.py:ClassName "
                   "(then give --input-shape).")
@click.option("--target", "target", required=True, help="Target name (see `edgest list targets`).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
              help="Weights: edgest's state_dict or an official release checkpoint (.pt, .pth or .safetensors; format detected).")
@click.option("--weights-format", "weights_format", metavar="NAME[:OPTION=VALUE]",
              help="Force the checkpoint format: edgest, squeezetime-mmaction, emov2, lmuformer, "
                   "timm-vit[:inflate=central|average] [default: auto, detected from the file's structure].")
@click.option("--input-shape", help="Static input shape, e.g. 1x3x16x224x224; frames and size rebuild a zoo model for them.")
@click.option("--model-option", "model_option", multiple=True, metavar="KEY=VALUE",
              help="Model option, repeatable: a key of the model's config, e.g. num_frames=8 or num_classes=600 "
                   "(see `edgest list models NAME`).")
@click.option("--out", "out", type=click.Path(path_type=Path), help="Run folder (default edgest-out/MODEL-TARGET).")
@click.option("--pass", "passes", multiple=True, help="Pass to run, repeatable, in order.")
@click.option("--precision", help="fp32, fp16, bf16 or int8 (adds the quantize pass) [default: the target's; fp32, Core ML fp16].")
@click.option("--calibration", type=click.Path(path_type=Path), help="Folder of .npy inputs or video files (PyAV) to calibrate int8 on (default: synthetic clips, or keyword glides for B,L,C models).")
@click.option("--calibration-size", type=click.IntRange(1, 100_000), help="Calibration inputs to use [default: 32].")
@click.option("--quant-skip", "quant_skip", multiple=True, help="Module to keep in float under int8 (e.g. fc), repeatable.")
@click.option("--target-option", "target_option", multiple=True, metavar="KEY=VALUE",
              help="Target option, repeatable, e.g. tvm_target=aarch64; each target's options are in docs/targets/TARGET.md "
                   "and `edgest list targets`.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256), help="Runtime threads for the checks.")
@click.option("--samples", default=8, show_default=True, type=click.IntRange(1, 10_000), help="Random inputs for the accuracy check.")
@click.option("--task-samples", type=click.IntRange(0, 100_000),
              help="Labelled synthetic clips or keyword glides for task top-1 (video and B,L,C models; 0: off) [default: 256 with --weights, else 0].")
@click.option("--eval", "eval_dir", type=click.Path(path_type=Path),
              help="Your labelled clips: DIR/<class>/*.mp4|.avi|.mkv (read with the model's preprocessing) or files listed "
                   "in DIR/labels.csv (file,label; videos or .npy clips); task top-1/top-5 on them replaces the synthetic set.")
@click.option("--quant-sensitivity", is_flag=True, help="int8: SQNR per quantised layer, worst first, in the report (one quantisation per layer).")
@click.option("--streaming", is_flag=True,
              help="Compile the model's step (streaming) module: inputs (x_t, *state), outputs (out_t, *state); checked over "
                   "whole sequences against the parallel model; writes streaming.json (models whose spec names a step module).")
@click.option("--coverage", is_flag=True,
              help="Add the target's op coverage of the captured program to the report (what edgest check says: ops not "
                   "run natively or in a delegate); seconds more.")
@click.option("--debug/--no-debug", "debug", default=None,
              help="After the checks, compare the artifact with eager module by module and name where the error starts "
                   "(edgest debug): always with --debug; by default when the accuracy check fails.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the random inputs (0 to 2**32-1).")
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_verbosity_options
def compile_cmd(model: str, target: str, weights: Path | None, weights_format: str | None, input_shape: str | None,
                model_option: tuple[str, ...], out: Path | None, passes: tuple[str, ...], precision: str | None, calibration: Path | None, calibration_size: int | None,
                quant_skip: tuple[str, ...], target_option: tuple[str, ...], threads: int, samples: int,
                task_samples: int | None, eval_dir: Path | None, quant_sensitivity: bool, streaming: bool, coverage: bool,
                debug: bool | None, seed: int, force: bool, as_json: bool, quiet: bool, verbose: bool) -> int:
    """Compile MODEL for TARGET, check it against eager PyTorch, write the artifact and report.

    Progress goes to stderr: live on a terminal, timestamped lines per stage elsewhere (CI, logs).
    """
    from edgest import progress
    from edgest.passes.options import parse_pass_arg
    from edgest.pipeline import run
    from edgest.plan import plan

    # bad input (weights, shapes, calibration files, --quant-skip names) shows as one error line: the progress
    # lines wait until the artifact is made (or 30 s have passed) and are dropped if the compile fails before
    shown = progress.display(f"compile {model} → {target}", _verbosity(quiet, verbose), hold="quantize")
    with progress.showing(shown):
        with shown.step("plan"):
            target_options = _target_options(target_option, [target]).get(target, {})
            _check_precision(target, precision)
            pass_args = _with_quant_options([parse_pass_arg(p) for p in passes], precision, calibration, calibration_size,
                                            quant_skip, quant_sensitivity)
            the_plan = plan(model, target, passes=pass_args, weights=weights, input_shape=input_shape, out_dir=out,
                            precision=precision, threads=threads, samples=samples, seed=seed, force=force,
                            target_options=target_options, task_samples=task_samples,
                            model_options=_model_options(model_option, [model]).get(model), weights_format=weights_format,
                            eval_dir=eval_dir, streaming=streaming, coverage=coverage)
        report = run(the_plan, on_stage=shown.stage)
    if as_json:
        click.echo(dumps_json(report.to_dict()), nl=False)
    else:
        from edgest.report.console import print_report

        print_report(report, Path(report.run_dir))
    from edgest.cli_debug import after_compile

    after_compile(the_plan, report, debug)
    return 0 if report.status == "passed" else 1


def _target_options(items: tuple[str, ...], targets: list[str]) -> dict[str, dict[str, Any]]:
    """--target-option values, typed by each target's option table."""
    if not items:
        return {}
    from edgest.plugins import get_registry
    from edgest.target_options import parse_target_options

    registry = get_registry()
    return parse_target_options(items, [registry.target(t) for t in targets])


def _model_options(items: tuple[str, ...], models: list[str]) -> dict[str, dict[str, Any]]:
    """--model-option values per model, still text (each model's config types them)."""
    if not items:
        return {}
    from edgest.model import is_model_file
    from edgest.model_options import parse_items
    from edgest.plugins import get_registry

    registry = get_registry()
    return parse_items(items, {m: None if is_model_file(m) else registry.model(m) for m in models})


def _check_precision(target: str, precision: str | None) -> None:
    """An unknown precision, or one the target lacks, is bad input (exit 2), refused before any work."""
    if precision is not None:
        from edgest.plugins import get_registry
        from edgest.validate import check_precisions

        check_precisions([get_registry().target(target)], [precision], "--precision")


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
@click.argument("name", required=False)
@click.option("--model-option", "model_option", multiple=True, metavar="[MODEL:]KEY=VALUE",
              help="With `list models`: parameters and MACs of the variant these options make, repeatable.")
@click.option("--stats", is_flag=True,
              help="Measure the parameters and MACs not cached yet (seconds for the zoo, once; then cached).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def list_cmd(what: str | None, name: str | None, model_option: tuple[str, ...], stats: bool, as_json: bool) -> int:
    """List models, targets, passes and plugins, with availability; `list models NAME` shows a model's options.

    Parameters and MACs shown are those measured before (cached per user); `--stats` or a model
    NAME measures the missing ones.
    """
    from edgest.inventory import inventory

    if (name or model_option) and what != "models":
        from edgest.errors import BadInput

        raise BadInput("a model name and --model-option go with models only; write edgest list models NAME "
                       "[--model-option KEY=VALUE], e.g. edgest list models squeezetime --model-option num_frames=8")
    with _measuring() as on_measure:
        data = inventory([what] if what else ["models", "targets", "passes", "plugins"], name, model_option,
                         stats=stats, on_measure=on_measure)
    missing = [r["name"] for r in data.get("models", []) if r.get("params") is None and r.get("macs") is None]
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        _list_tables(data)
    if missing:
        click.echo(f"edgest: params and MACs of {len(missing)} model(s) not measured yet (shown as ?); "
                   "`edgest list models --stats` measures them once (seconds) and caches them", err=True)
    return 0


@contextmanager
def _measuring() -> Iterator[Any]:
    """A live "measuring NAME (i/n)" line on a terminal while models are built for their stats; nothing elsewhere."""
    import sys

    from edgest.progress import is_terminal

    if not is_terminal(sys.stderr):
        yield None
        return
    with _console(stderr=True).status("measuring parameters and MACs…") as status:
        yield lambda name, i, n: status.update(f"measuring parameters and MACs: {name} ({i + 1}/{n})…")


def _list_tables(data: dict[str, list[dict[str, Any]]]) -> None:
    """One table per kind of thing listed."""
    for kind, rows in data.items():
        if not rows:
            _console().print(f"{kind}: (none registered)")
            continue
        cols = [c for c in rows[0] if not (kind == "models" and c == "family")]  # the name says it; JSON keeps it
        _table(kind, cols, [[_cell(c, r[c]) for c in cols] for r in rows])


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


@cli.command("bench")
@config_option
@click.option("--models", required=True, help="Comma-separated model names.")
@click.option("--targets", required=True, help="Comma-separated target names.")
@click.option("--precisions", default="fp32", show_default=True, help="Comma-separated precisions.")
@click.option("--pass", "passes", multiple=True, help="Pass applied to every cell, repeatable.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("edgest-bench"), show_default=True)
@click.option("--weights", multiple=True, help="MODEL=FILE, repeatable.")
@click.option("--target-option", "target_option", multiple=True, metavar="[TARGET:]KEY=VALUE",
              help="Target option, repeatable; KEY=VALUE goes to every target that has KEY (options: docs/targets/TARGET.md).")
@click.option("--model-option", "model_option", multiple=True, metavar="[MODEL:]KEY=VALUE",
              help="Model option, repeatable (e.g. num_frames=8); KEY=VALUE goes to every model whose config has KEY.")
@click.option("--no-cache", is_flag=True, help="Recompile every cell.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256), help="Runtime threads for the checks.")
@click.option("--samples", default=8, show_default=True, type=click.IntRange(1, 10_000), help="Random inputs for each cell's accuracy check.")
@click.option("--eval", "eval_dir", type=click.Path(path_type=Path),
              help="Your labelled clips (as for compile) for every model's task top-1/top-5; part of the cache key.")
@click.option("--stand-in-weights", is_flag=True,
              help="Models that ignore their input at their init (EMOv2, spiking LMUFormer) get untrained stand-in weights "
                   "(accuracy judged, task accuracy not) instead of being refused.")
@click.option("--min-sqnr", type=FiniteFloat(), help="Budget: minimum SQNR (dB) for every cell.")
@click.option("--max-accuracy-drop", type=FiniteFloat(0, 100), help="Budget: maximum top-1 agreement lost vs eager (points, 0 to 100).")
@click.option("--max-latency-ms", help="Budget: p50 limit, global (20) or per target (onnx=20,executorch=30).")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "pool", "ray"]),
              help="Where cells run: here one by one, a pool of processes here (--jobs), or Ray tasks on a cluster "
                   "(--address); results are the same (docs/executors.md).")
@click.option("--jobs", type=click.IntRange(1, 1024), help="--executor pool: processes compiling cells at once [default: the CPUs].")
@click.option("--address", help="--executor ray: the cluster (host:6379 or ray://host:10001) [default: auto, this machine's "
                                "cluster or a new one-machine one].")
@click.option("--device", "device", multiple=True, metavar="[TARGET=]LABEL",
              help="--executor ray: time the cells (of TARGET) on the device host advertising LABEL "
                   "(`edgest device serve --labels LABEL`), repeatable.")
@click.option("--streaming", is_flag=True,
              help="Bench each model's step (streaming) module, as compile --streaming: cells add per-step p50/p90 and "
                   "the real-time factor at the model's hop (models whose spec names a step module).")
@click.option("--coverage", is_flag=True,
              help="Each cell's report adds its target's op coverage (compile --coverage); cells list the ops not run "
                   "natively or in a delegate.")
@click.option("--json", "as_json", is_flag=True, help="Print the bench document as JSON.")
@_verbosity_options
def bench_cmd(models: str, targets: str, precisions: str, passes: tuple[str, ...], out: Path, weights: tuple[str, ...],
              target_option: tuple[str, ...], model_option: tuple[str, ...],
              no_cache: bool, threads: int, samples: int, eval_dir: Path | None, stand_in_weights: bool, min_sqnr: float | None,
              max_accuracy_drop: float | None, max_latency_ms: str | None, executor: str, jobs: int | None,
              address: str | None, device: tuple[str, ...], streaming: bool, coverage: bool, as_json: bool, quiet: bool,
              verbose: bool) -> int:
    """Run a model x target x precision matrix; write bench.json, report.md and report.html.

    Each model first runs once in eager: one that ignores its input (untrained EMOv2, spiking LMUFormer)
    is not compiled unless --weights or --stand-in-weights. Progress goes to stderr: cells done, the
    current cell and its stage, an ETA from the cells' past timings.
    """
    from edgest import progress
    from edgest.bench import (
        Budget,
        matrix,
        parse_latency_budget,
        reference_cells,
        run_bench,
    )
    from edgest.plugins import get_registry
    from edgest.validate import check_passes, check_precisions, name_list, weights_map

    # everything refused before the first cell: names, precisions per target, passes, weights, budgets, options
    model_list, target_list = name_list("--models", models, "squeezetime_tiny"), name_list("--targets", targets, "eager,onnx")
    precision_list, registry = name_list("--precisions", precisions, "fp32,int8"), get_registry()
    for m in model_list:
        registry.model(m)
    check_precisions([registry.target(t) for t in target_list], precision_list)
    check_passes(passes, registry)
    wmap = weights_map(weights, model_list)
    budget = Budget(min_sqnr, max_accuracy_drop, parse_latency_budget(max_latency_ms, target_list))
    target_options, model_options = _target_options(target_option, target_list), _model_options(model_option, model_list)
    from edgest.bench_jobs import parse_devices
    from edgest.executors import get_executor
    from edgest.outdir import check_output

    devices = parse_devices(device, target_list)
    runner = get_executor(executor, jobs=jobs, address=address)  # Ray missing: one line, before any work

    check_output(out, kind="bench")  # a folder bench may write into (new, empty or a bench's), before the progress
    level = _verbosity(quiet, verbose)
    cells = matrix(model_list, target_list, precision_list, passes) + reference_cells(model_list, target_list, precision_list)
    estimates = [progress.cell_estimate(out / "cells" / c.folder, not no_cache) for c in cells]
    shown = progress.display(f"bench: {len(cells)} cells into {out}", level, hold="pre-flight")  # bad input: one line
    with progress.showing(shown):
        watch = progress.BenchProgress(shown, estimates)
        doc = run_bench(model_list, target_list, precision_list, out, passes=passes, weights=wmap, use_cache=not no_cache,
                        budget=budget, threads=threads, samples=samples, on_cell=watch.on_cell, on_stage=watch.stage,
                        target_options=target_options, model_options=model_options, stand_in_weights=stand_in_weights,
                        config=click.get_current_context().meta.get(CONFIG_META), eval_dir=eval_dir,
                        executor=runner, devices=devices, streaming=streaming, coverage=coverage)
    return _bench_outcome(doc, out, as_json, ran_on=executor == "ray")


def _bench_outcome(doc: dict[str, Any], out: Path, as_json: bool, ran_on: bool) -> int:
    """Print the bench (table or JSON), then one stderr line per cell over budget, per pre-flight refusal and per
    cell that failed or errored (its reason, which the table has no room for); the exit code (1 unless all passed)."""
    from edgest.bench import over_budget

    if as_json:
        click.echo(dumps_json(doc), nl=False)
    else:
        _bench_table(doc, out, ran_on=ran_on)
    over = over_budget(doc)
    for line in over:
        click.echo(f"edgest: over budget: {line}", err=True)
    for why in sorted({c["error"] for c in doc["cells"] if c["status"] == "not_run" and "ignores its input" in c["error"]}):
        click.echo(f"edgest: error: {why}", err=True)  # the pre-flight's refusal, after the table as well as before
    for c in doc["cells"]:
        if c["status"] in ("error", "failed", "incomplete"):  # not_run: the pre-flight printed its own line
            click.echo(f"edgest: cell {c['model']}/{c['target']}/{c['precision']}: {_cell_reason(c, out)}", err=True)
    failed = [c for c in doc["cells"] if c["status"] != "passed"]
    return 1 if over or failed else 0


def _cell_reason(cell: dict[str, Any], out: Path) -> str:
    """Why a cell did not pass, on one short line: its error, else the checks that failed (see its report.md)."""
    text = (cell.get("error") or "").strip()
    if text:
        line = text.splitlines()[0]
        return line if len(line) <= 300 else line[:297] + "..."
    checks = [k for k in ("accuracy", "latency") if (cell.get(k) or {}).get("status") not in (None, "passed")]
    what = ", ".join(f"{k} check {cell[k]['status']}" for k in checks) or f"status {cell['status']}"
    return f"{what}; see {out / cell['run_dir'] / 'report.md' if cell.get('run_dir') else 'its report.md'}"


def _bench_table(doc: dict[str, Any], out: Path, ran_on: bool) -> None:
    """The bench's cells as a table: status, p50, SQNR, seconds (and where each ran, for a Ray bench)."""
    rows = [[c["model"], c["target"], c["precision"], c["status"] + (" (cached)" if c["cached"] else ""),
             f"{c['latency']['p50_ms']:.2f}" if (c.get("latency") or {}).get("p50_ms") else "-",
             f"{c['accuracy']['sqnr_db']:.1f}" if (c.get("accuracy") or {}).get("sqnr_db") is not None else "-",
             f"{c['seconds']:.1f}"] + ([_ran_on(c)] if ran_on else []) for c in doc["cells"]]
    columns = ["model", "target", "precision", "status", "p50 ms", "SQNR dB", "seconds"] + (["ran on"] if ran_on else [])
    _table(f"edgest bench → {out}/report.md, report.html", columns, rows)


def _ran_on(cell: dict[str, Any]) -> str:
    """Where a Ray cell ran: host, node id, and its attempts when it was retried."""
    where = cell.get("ran_on") or {}
    node = f" ({str(where['node'])[:8]})" if where.get("node") else ""
    tries = f", {where['attempts']} attempts" if where.get("attempts", 1) > 1 else ""
    return f"{where.get('host', '-')}{node}{tries}"


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


@cli.command("predict")
@click.argument("source", metavar="RUN_DIR|ARTIFACT", type=click.Path(path_type=Path))
@click.argument("videos", metavar="VIDEO...", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", help="Target that made a bare artifact (a run folder's report says it).")
@click.option("--model", help="Registered model of a bare artifact: its input shape and preprocessing.")
@click.option("--input-shape", help="Input shape of a bare artifact, e.g. 1x3x16x224x224 (with --model: a variant of it).")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path),
              help="Class names, one per line in class-index order [default: the list for the model's class count: "
                   "Kinetics-400/600, HMDB51, Something-Something v2, Speech Commands v2].")
@click.option("--top", default=5, show_default=True, type=click.IntRange(1, 1000), help="Classes shown per video.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256), help="Runtime threads.")
@click.option("--target-option", "target_option", multiple=True, metavar="KEY=VALUE", help="Target option for loading, repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON.")
def predict_cmd(source: Path, videos: tuple[Path, ...], target: str | None, model: str | None, input_shape: str | None,
                labels: Path | None, top: int, threads: int, target_option: tuple[str, ...], as_json: bool) -> int:
    """Run a compiled artifact on videos with its target's runtime; print the top classes with scores."""
    from edgest.predict import predict, resolve_source

    src = resolve_source(source, target, model, input_shape)
    result = predict(src, list(videos), labels, top, threads, _target_options(target_option, [src.target]).get(src.target))
    if as_json:
        click.echo(dumps_json(result), nl=False)
        return 0
    click.echo(f"{result['model']} on {result['target']} ({result['artifact']}); classes: {result['labels']}")
    for p in result["predictions"]:
        click.echo(p["video"])
        width = max(len(t["class"]) for t in p["top"])
        for t in p["top"]:
            click.echo(f"  {t['rank']}. {t['class']:<{width}}  {t['score']:.3f}")
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


# commands in their own modules (light at import: they load their work inside the command)
from edgest.cli_check import check_cmd
from edgest.cli_debug import debug_cmd
from edgest.cli_device import device_group
from edgest.cli_optimize import optimize_cmd

cli.add_command(debug_cmd)  # edgest debug RUN_DIR
cli.add_command(check_cmd)  # edgest check --model M
cli.add_command(optimize_cmd)  # edgest optimize --model M
cli.add_command(device_group)  # edgest device serve


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
    """Entry point: one-line errors, exit codes 0 (ok), 1 (failed check/unsupported), 2 (bad input),
    130/143/129 (interrupted by SIGINT/SIGTERM/SIGHUP)."""
    from edgest import interrupts

    try:
        with interrupts.handled():  # restored on the way out, for in-process callers
            _main(argv)
    except SystemExit as exc:
        if argv is None:  # the process itself (console script, python -m): its work is done and reported
            interrupts.ignore_until_exit()  # a Ctrl-C during interpreter shutdown: no traceback, no death by signal
            _exit_past_stray_threads(exc.code)
        raise


def _exit_past_stray_threads(code: Any, wait_s: float = 2.0) -> None:
    """Exit now if a thread that a user's model file started would keep the process alive after its work is done
    (Python waits for non-daemon threads before exiting).

    The threads get ``wait_s`` to end, all together; a thread pool's workers get none (an idle worker waits for
    work that never comes). Each thread used to get its own 2 s: an OpenVINO compile, which leaves the pool of
    six idle workers that ``ov.convert_model``'s telemetry starts, waited 12 s after its report was written.
    """
    import os
    import threading
    import time

    stray = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    # a toolchain's thread pool (OpenVINO's telemetry, NNCF's) is not news to the user
    waited = [t for t in stray if not _pool_worker(t)]
    deadline = time.monotonic() + wait_s
    for t in waited:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    stray = [t for t in stray if t.is_alive()]
    if stray:
        named = [t for t in waited if t.is_alive()]
        if named:
            click.echo(f"edgest: note: thread '{named[0].name}' (started by the model's code?) is still running; "
                       "exiting without waiting for it", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)


def _pool_worker(thread: Any) -> bool:
    """Whether ``thread`` is a ``concurrent.futures`` pool's worker (idle ones wait for work that never comes)."""
    target = getattr(thread, "_target", None)
    return getattr(target, "__module__", "") == "concurrent.futures.thread"


def _main(argv: list[str] | None) -> None:
    from edgest import interrupts

    try:
        import os

        os.getcwd()
    except FileNotFoundError:  # torch's own import would fail with a native-library error that says nothing of this
        click.echo("edgest: error: the current folder no longer exists (it was deleted or moved); cd to an existing "
                   "folder and run again", err=True)
        sys.exit(2)
    for stream in (sys.stdout, sys.stderr):  # an ASCII-only terminal (LC_ALL=C) must not turn '→' into a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")

    try:
        for line in _register_plugin_commands():
            click.echo(line, err=True)
        rv = cli.main(args=argv, prog_name="edgest", standalone_mode=False)
    except EdgestError as exc:
        click.echo(f"edgest: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:  # `edgest` or `edgest report` alone: the help is the answer
        click.echo(exc.format_message())
        sys.exit(0)
    except click.UsageError as exc:  # click's own: one line like every other error, not Usage/Try/Error
        from edgest.cli_usage import usage_line

        click.echo(f"edgest: error: {usage_line(exc)}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        from edgest.cli_usage import click_error_line

        click.echo(f"edgest: error: {click_error_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:  # Ctrl-C, SIGTERM, SIGHUP (edgest.interrupts)
        click.echo(interrupts.message(exc), err=True)
        sys.exit(interrupts.exit_code(exc))
    except OSError as exc:  # a path the OS refuses (name too long, a loop of links, ...) that no reader named first
        where = f" '{exc.filename}'" if exc.filename else ""
        click.echo(f"edgest: error: cannot use{where}: {exc.strerror or exc}; check the path and the folder's permissions",
                   err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)
