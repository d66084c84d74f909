"""Parse ``--target-option [TARGET:]KEY=VALUE`` into each target's typed options.

Values are typed by the target's ``option_table`` (int, float, bool, str, or one of a tuple of
allowed values), so ``tune_trials=64`` arrives as the int 64. The target's constructor still
does the checking: an unknown key or a bad value is its one-line BadInput. A target without a
table that checks its own options gets JSON-ish values (``8`` → 8, ``true`` → True, else the
text); a target that takes no options at all says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from edgest.errors import BadInput
from edgest.target import Target



def _loose(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def typed_value(target: type[Target], key: str, text: str) -> Any:
    """``text`` as the type ``target`` declares for option ``key`` (the text itself when it declares none)."""
    if key not in target.option_table:
        return text if target.option_table else _loose(text)
    from edgest.options import from_text

    return from_text(target.name, target.option_table, key, text)


def _takes_options(target: type[Target]) -> bool:
    return bool(target.option_table) or target.__init__ is not Target.__init__


def _tabled_hint(targets: Sequence[type[Target]]) -> str:
    """``" (options: tvm: tune_trials, tuning_db)"``: the declared options of the targets that have a table, or ``""``."""
    tables = [f"{t.name}: {', '.join(t.option_table)}" for t in targets if t.option_table]
    return f" (options: {'; '.join(tables)})" if tables else ""


def parse_target_options(items: Sequence[str], targets: Sequence[type[Target]]) -> dict[str, dict[str, Any]]:
    """``["tune_trials=64", "tvm:tvm_target=aarch64"]`` → ``{"tvm": {"tune_trials": 64, "tvm_target": "aarch64"}}``.

    ``TARGET:KEY=VALUE`` applies to that target only. ``KEY=VALUE`` applies to the only target, or,
    with several, to every one whose table declares ``KEY`` (BadInput when none does).
    """
    by_name = {t.name: t for t in targets}
    out: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
    for item in items:
        head, eq, text = item.partition("=")
        scope, colon, key = head.rpartition(":") if ":" in head else ("", "", head)
        key, scope = key.strip(), scope.strip()
        if not eq or not key or (colon and not scope):
            raise BadInput(f"malformed --target-option '{item}'; write KEY=VALUE or TARGET:KEY=VALUE")
        if scope:
            if scope not in by_name:
                from edgest.validate import did_you_mean

                hint = did_you_mean(scope, by_name) or "; write TARGET:KEY=VALUE with one of those targets"
                raise BadInput(f"--target-option '{item}' names target '{scope}', which is not being compiled "
                               f"({', '.join(by_name)}){hint}")
            chosen = [by_name[scope]]
        elif len(targets) == 1:
            chosen = list(targets)
        else:
            chosen = [t for t in targets if key in t.option_table]
            if not chosen:
                raise BadInput(f"no target among {', '.join(by_name)} has an option '{key}'; name the target: "
                               f"--target-option TARGET:KEY=VALUE{_tabled_hint(targets)}")
        for target in chosen:
            if not _takes_options(target):
                raise BadInput(f"target '{target.name}' takes no options (got --target-option {item}); remove that "
                               f"--target-option{_tabled_hint(targets)}")
            out[target.name][key] = typed_value(target, key, text.strip())
    return out


def options_at(target: type[Target], precision: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` less those ``target`` declares for other precisions only (:attr:`Target.option_precisions`)."""
    return {k: v for k, v in options.items() if precision in target.option_precisions.get(k, (precision,))}


def check_precision_options(target: type[Target], precision: str, options: dict[str, Any]) -> None:
    """BadInput naming an option given to a ``precision`` compile that acts at other precisions only."""
    for key in options.keys() - options_at(target, precision, options).keys():
        acts = " and ".join(target.option_precisions[key])
        raise BadInput(f"target option {key} of '{target.name}' acts at {acts} only, and this compile is {precision}; "
                       f"drop it, or add --precision {target.option_precisions[key][0]}")


def check_bench_precision_options(target_options: dict[str, dict[str, Any]], targets: dict[str, type[Target]],
                                  precisions: Sequence[str]) -> None:
    """BadInput naming a bench's target option that acts at none of the bench's ``precisions`` (it would act nowhere)."""
    for name, options in target_options.items():
        target = targets.get(name)
        for key in options if target is not None else ():
            acts = target.option_precisions.get(key)
            if acts and not set(acts) & set(precisions):
                raise BadInput(f"target option {key} of '{name}' acts at {' and '.join(acts)} only, and this bench has "
                               f"no such precision ({', '.join(precisions)}); drop it, or add {acts[0]} to --precisions")
