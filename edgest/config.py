"""``--config FILE``: a TOML file whose keys are a command's own long options, for CI and repeatable runs.

One key per option, named as the option without its dashes (``max-latency-ms = "onnx=20"``;
``max_latency_ms`` is read the same). Values are what the option takes on the command line:

* a flag: ``true`` or ``false``;
* a comma list (``--models``, ``--precisions``): a string ``"a,b"`` or an array ``["a", "b"]``;
* a repeatable option (``--pass``, ``--weights``, ``--target-option``): an array of strings, or a
  table, ``[weights]`` ``squeezetime_tiny = "w.pt"``, each entry becoming ``KEY=VALUE``;
* anything else: a string or a number (a table becomes ``KEY=VALUE,...``, e.g. ``max-latency-ms``); an
  option of one path, number or choice (``out``, ``samples``, ``executor``) refuses an array or a table.

The file only supplies defaults (click's ``default_map``), so a flag given on the command line
overrides the file. An unknown key is refused with the keys the command takes. Paths in the file
are read like the command line's, from the current folder. :func:`config_option` adds the option;
the command finds the file's path and sha256 in ``click.get_current_context().meta[META]`` (bench
writes them into ``bench.json``).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from edgest.errors import BadInput

#: the ``ctx.meta`` key under which the loaded config's ``{"path", "sha256"}`` is kept
META = "edgest.config"
F = TypeVar("F", bound=Callable[..., Any])


def _keys(command: click.Command) -> dict[str, click.Option]:
    """Config key → option: each long option of ``command`` without its dashes (not --config or --help)."""
    out = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in ("config", "help"):
            longs = [o for o in param.opts if o.startswith("--")]
            if longs:
                out[longs[0][2:]] = param
    return out


def _scalar(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _one_value(option: click.Option) -> bool:
    """An option that takes a single path, number or choice: an array or table in the file is a mistake there
    (``[out]`` with ``x = 1`` below it would otherwise name the run folder ``x=1``)."""
    kinds = (click.Path, click.types.IntParamType, click.types.FloatParamType, click.Choice)
    return not option.multiple and not option.is_flag and isinstance(option.type, kinds)


def _value(key: str, option: click.Option, value: Any, path: Path) -> Any:
    """``value`` from the file as the option would receive it on the command line."""
    import datetime

    inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    if any(isinstance(v, (list, dict)) for v in inner):
        raise BadInput(f"config '{path}': key '{key}' holds a nested array or table; give strings or numbers")
    if any(isinstance(v, (datetime.date, datetime.time)) for v in (value, *inner)):
        raise BadInput(f"config '{path}': key '{key}' holds a TOML date or time; give a number or a quoted string")
    if isinstance(value, (list, dict)) and _one_value(option):
        why = (" above every [table] header (a key below a header belongs to that table)" if isinstance(value, dict)
               else "")
        raise BadInput(f"config '{path}': key '{key}' takes one value, not {'a table' if why else 'an array'}; "
                       f"write {key} = VALUE{why}")
    if isinstance(value, dict):
        items = [f"{k}={_scalar(v)}" for k, v in value.items()]
        return items if option.multiple else ",".join(items)
    if option.is_flag:
        if not isinstance(value, bool):
            raise BadInput(f"config '{path}': key '{key}' is a flag; write {key} = true or {key} = false")
        return value
    if isinstance(value, list):
        return [_scalar(v) for v in value] if option.multiple else ",".join(_scalar(v) for v in value)
    if isinstance(value, float):  # as text, so click parses it as on the command line: an int option refuses 8.5
        value = _scalar(value)  # (given as a number, click would take int(8.5) == 8 without a word)
    return [_scalar(value)] if option.multiple else value


def read_config(path: Path, command: click.Command) -> tuple[dict[str, Any], str]:
    """The ``default_map`` for ``command`` from the TOML file at ``path``, and the file's sha256.

    Raises :class:`~edgest.errors.BadInput` for a missing or unreadable file, invalid TOML, an
    unknown key (naming the keys ``command`` takes) and a value of the wrong shape.
    """
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read config '{path}': {exc.strerror or exc}; pass --config an existing TOML file") from None
    try:
        data = tomllib.loads(blob.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"config '{path}' is not valid TOML: {exc}; fix the file") from None
    keys = _keys(command)
    defaults: dict[str, Any] = {}
    for raw, value in data.items():
        key = raw.replace("_", "-")
        if key not in keys:
            from edgest.validate import did_you_mean

            raise BadInput(f"config '{path}': unknown key '{raw}' for edgest {command.name}{did_you_mean(key, keys)}; "
                           f"keys are the command's options: {', '.join(sorted(keys))}")
        option = keys[key]
        if option.name in defaults:
            raise BadInput(f"config '{path}': key '{key}' is given twice (as '{raw}'); keep one")
        defaults[str(option.name)] = _value(key, option, value, path)
    return defaults, hashlib.sha256(blob).hexdigest()


def _load(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is None:
        return
    defaults, sha = read_config(value, ctx.command)
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta[META] = {"path": str(value), "sha256": sha}


def config_option(f: F) -> F:
    """The ``--config FILE`` option (eager: read before every other option, whose defaults it sets)."""
    return click.option("--config", type=click.Path(dir_okay=False, path_type=Path), is_eager=True, expose_value=False,
                        callback=_load, metavar="FILE.toml",
                        help="Read options from a TOML file (keys are the long options without dashes); "
                             "flags given here override it.")(f)
