"""``edgest check``: the op-coverage pre-flight on the command line (a thin layer over :func:`edgest.preflight.check`)."""

from __future__ import annotations

from typing import Any

import click

from edgest.coverage import VERDICTS, Coverage, Preflight

_COLOURS = {"native": "green", "delegated": "cyan", "fallback": "yellow", "unsupported": "red"}


def short_op(op: str) -> str:
    """``aten.conv2d.default`` → ``conv2d``; other overloads keep their name (``add.Tensor``)."""
    return op.removeprefix("aten.").removesuffix(".default")


def cell(coverage: Coverage, op: str) -> str:
    """One table cell: the op's verdict, or each verdict with its node count when they differ."""
    counts = {v: n for v, n in coverage.verdicts(op).items() if n}
    if not counts:
        return "-"
    ordered = [v for v in VERDICTS if v in counts]
    if len(ordered) == 1:
        return f"[{_COLOURS[ordered[0]]}]{ordered[0]}[/]"
    return ", ".join(f"[{_COLOURS[v]}]{v} {counts[v]}[/]" for v in ordered)


def _total(coverage: Coverage) -> str:
    from edgest.report.coverage import nodes_text

    return nodes_text(coverage.summary()) or "-"


def print_preflight(result: Preflight) -> None:
    """The ops × targets table, then one line per target that could not answer and each target's basis."""
    from edgest.cli import _console, _table

    known = {t: c for t, c in result.coverage.items() if c.status == "known"}
    shape = "x".join(map(str, result.input_shape))
    rows = [[short_op(o["op"]), str(o["count"]), ", ".join(o["where"][:1]), *(cell(c, o["op"]) for c in known.values())]
            for o in result.ops]
    rows.append(["[bold]nodes[/]", str(sum(o["count"] for o in result.ops)), "", *(_total(c) for c in known.values())])
    precision = f", {result.precision}" if result.precision else ""
    _table(f"edgest check: {result.model} ({shape}{precision}): what each target does with each op",
           ["op", "nodes", "source", *known], rows)
    console = _console()
    for name, c in result.coverage.items():
        kept = " (kept from an earlier check: --no-cache asks again)" if name in result.cached else ""
        console.print(f"{name}: {c.note}{kept}" if c.status == "known" else f"{name}: {c.status}: {c.note}",
                      soft_wrap=True, markup=False)


@click.command("check")
@click.option("--model", "model", required=True, metavar="NAME|FILE.py:CLASS",
              help="Model name (see `edgest list models`), or your own nn.Module as path/to/file.py:ClassName "
                   "(then give --input-shape).")
@click.option("--targets", default="all", show_default=True, help="Comma-separated target names, or all.")
@click.option("--precision", help="fp32, fp16, bf16 or int8: each target is asked as it would compile at it [default: each target's].")
@click.option("--input-shape", help="Static input shape, e.g. 1x3x16x224x224; frames and size rebuild a zoo model for them.")
@click.option("--model-option", "model_option", multiple=True, metavar="KEY=VALUE",
              help="Model option, repeatable: a key of the model's config, e.g. num_frames=8.")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Processes asking targets at once, each asking one target after another (1: every target in this process).")
@click.option("--no-cache", is_flag=True,
              help="Ask every target again instead of reusing an answer kept for the same program, target and toolchain.")
@click.option("--json", "as_json", is_flag=True, help="Print the coverage as JSON.")
def check_cmd(model: str, targets: str, precision: str | None, input_shape: str | None, model_option: tuple[str, ...],
              jobs: int, no_cache: bool, as_json: bool) -> int:
    """Before compiling: which ops of MODEL each target runs natively, delegates, falls back on or rejects.

    The model is captured once, as compile captures it; each installed target then answers from
    its toolchain's own knowledge (a partitioner, an exporter's op registry, a frontend's convert
    table) without compiling. A target that cannot say shows "not known". An answer is kept per
    user and reused while the program, the target's options, its toolchain and the code are the same.
    """
    from edgest.cli import _model_options
    from edgest.fsio import dumps_json
    from edgest.preflight import check, check_named_precision
    from edgest.validate import name_list

    names = None if targets.strip() == "all" else name_list("--targets", targets, "eager,onnx")
    check_named_precision(names or [], precision)
    with _asking() as on_target:
        result = check(model, names, precision=precision, input_shape=input_shape,
                       model_options=_model_options(model_option, [model]).get(model), on_target=on_target, jobs=jobs,
                       use_cache=not no_cache)
    if as_json:
        click.echo(dumps_json(result.to_dict()), nl=False)
    else:
        print_preflight(result)
    return 0


def _asking() -> Any:
    """A live "asking TARGET" line on a terminal's stderr; nothing elsewhere."""
    import sys
    from contextlib import contextmanager

    from edgest.progress import is_terminal

    @contextmanager
    def shown() -> Any:
        if not is_terminal(sys.stderr):
            yield None
            return
        from edgest.cli import _console

        with _console(stderr=True).status("capturing the model…") as status:
            yield lambda name: status.update(f"asking {name}…")

    return shown()
