"""Refuse a request before any work starts: empty lists, impossible precisions, options naming nothing.

The CLI's commands (and :func:`edgest.bench.run_bench`) call these first, so a typo in the
last element of a bench matrix is one ``edgest: error:`` line (exit 2) instead of a matrix of
failed cells, or, worse, an option that is silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgest.errors import BadInput, UnknownName, closest

if TYPE_CHECKING:
    from edgest.plugins import Registry
    from edgest.target import Target

#: every precision edgest knows (a target supports a subset, :attr:`Target.precisions`)
PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """``"; did you mean 'onnx'?"`` when ``name`` is close to one of ``names``, else ``""``."""
    close = closest(name, names)
    return f"; did you mean '{close}'?" if close else ""


def name_list(option: str, text: str, example: str) -> list[str]:
    """``"a, b,a"`` → ``["a", "b"]`` (order kept, repeats dropped); BadInput for a list with no names."""
    names = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not names:
        raise BadInput(f"{option} '{text}' names nothing; give comma-separated names, e.g. {option} {example}")
    return names


def check_precisions(targets: Sequence[type[Target]], precisions: Sequence[str], option: str = "--precisions") -> None:
    """Every precision is one edgest knows and every target supports; UnknownName/BadInput otherwise."""
    for p in precisions:
        if p not in PRECISIONS:
            raise UnknownName("precision", p, PRECISIONS)
    for t in targets:
        missing = [p for p in precisions if p not in t.precisions]
        if missing:
            fix = (f"drop {', '.join(missing)} from {option} (precisions=) or {t.name} from --targets (targets=)" if option == "--precisions"
                   else f"use {option} {' or '.join(t.precisions)}")
            raise BadInput(f"target '{t.name}' does not support precision {', '.join(missing)} "
                           f"(it supports {', '.join(t.precisions)}); {fix}")


def check_passes(passes: Sequence[str], registry: Registry) -> None:
    """Each ``--pass NAME[:k=v,...]`` parses, names a registered pass, and gives options its table accepts
    (checked here, before any cell compiles, as the pass's constructor would check them)."""
    from edgest.options import check_options
    from edgest.passes.options import parse_pass_arg

    for text in passes:
        name, options = parse_pass_arg(text)
        table = getattr(registry.pass_(name), "option_table", None)
        if table is not None:  # a pass without a table (not an edgest.passes.Pass) checks its own options
            check_options(f"pass '{name}'", table, options)


def weights_map(items: Sequence[str], models: Sequence[str]) -> dict[str, Path]:
    """``["squeezetime=w.pt"]`` → ``{"squeezetime": Path("w.pt")}``; each model in ``models``, each file there."""
    out: dict[str, Path] = {}
    for item in items:
        name, eq, path = (s.strip() for s in item.partition("="))
        if not eq or not name or not path:
            raise BadInput(f"malformed --weights '{item}'; write MODEL=FILE")
        if name not in models:
            hint = did_you_mean(name, models) or "; write MODEL=FILE with one of those models"
            raise BadInput(f"--weights '{item}' names model '{name}', which is not in --models ({', '.join(models)}){hint}")
        from edgest.weights.files import why_not_a_file

        why = why_not_a_file(path)
        if why:
            raise BadInput(f"weights file '{path}' (--weights {item}) {why}; pass --weights MODEL=a .pt, .pth or .safetensors file")
        out[name] = Path(path)
    return out
