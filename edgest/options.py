"""Option tables: the one place a target's or a pass's options are checked and typed.

A table maps each option name to ``(allowed, default)``. ``allowed`` is either a tuple of the
values accepted (``("matmul", "einsum")``) or a type (``int``, ``float``, ``bool``, ``str``,
``list``). Values given from Python are checked as they are (an int is accepted for a float
option and becomes a float). Values typed on a command line arrive as :class:`Text` and are
converted by the table first (``"8"`` → 8, ``"true"`` → True, ``"a+b"`` → ``["a", "b"]`` for a
list), so every option reaches its owner with the declared type, or is refused with one line
that names the option and the alternatives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgest.errors import BadInput

#: option name → (allowed values as a tuple, or a type; default)
OptionTable = dict[str, tuple[Any, Any]]

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_TYPES = (int, float, bool, str, list)


class Text(str):
    """An option value as written on the command line, still to be typed by the receiving table."""


def from_text(subject: str, table: OptionTable, key: str, text: str) -> Any:
    """``text`` converted to the type ``table`` declares for ``key`` (BadInput when it cannot be)."""
    allowed = table[key][0]
    if isinstance(allowed, tuple):
        return next((v for v in allowed if str(v) == text), str(text))
    if allowed is bool:
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise BadInput(f"{subject} option {key} must be true or false, not '{text}'; write {key}=true or {key}=false")
    if allowed in (int, float):
        try:
            return allowed(text)
        except ValueError:
            default = table[key][1]
            example = default if isinstance(default, (int, float)) and not isinstance(default, bool) else 1
            raise BadInput(f"{subject} option {key} must be {allowed.__name__}, not '{text}'; write a number "
                           f"(e.g. {key}={example})") from None
    if allowed is list:
        return [item for item in text.split("+") if item]
    return str(text)


def check_option(subject: str, table: OptionTable, key: str, value: Any) -> Any:
    """``value`` for option ``key`` of ``subject`` (e.g. ``tvm``, ``pass 'quantize'``), checked and typed.

    Raises BadInput for an unknown key (listing the known ones) or a value the table refuses.
    """
    if key not in table:
        raise BadInput(f"unknown {subject} option '{key}'; available: {', '.join(table) or '(none)'}")
    if isinstance(value, Text):
        value = from_text(subject, table, key, value)
    allowed, default = table[key]
    if value is None and default is None:
        return value
    if isinstance(allowed, tuple):
        if value not in allowed:
            raise BadInput(f"{subject} option {key}={value!r} is not one of {', '.join(map(str, allowed))}; "
                           "give one of those")
        return value
    if allowed is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if allowed is list and isinstance(value, tuple):
        value = list(value)
    # bool is an int to Python; an int or str option given True/False is still a mistake
    if not isinstance(value, allowed) or (allowed is not bool and isinstance(value, bool)):
        kind = {int: "an integer", float: "a number", bool: "True or False", list: "a list"}.get(allowed, "text")
        raise BadInput(f"{subject} option {key} must be {allowed.__name__}, not {value!r}; give {kind}")
    return value


def check_options(subject: str, table: OptionTable, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option in ``options`` checked and typed by ``table`` (see :func:`check_option`)."""
    return {key: check_option(subject, table, key, value) for key, value in options.items()}


def table_problem(table: Any) -> str | None:
    """Why ``table`` is not a valid option table, or None: used to refuse a plugin at registration."""
    if not isinstance(table, dict):
        return f"option_table must be a dict of name → (allowed, default), not {type(table).__name__}"
    for key, entry in table.items():
        if not isinstance(key, str) or not key.isidentifier():
            return f"option_table key {key!r} is not an identifier"
        if not isinstance(entry, tuple) or len(entry) != 2:
            return f"option_table['{key}'] must be a pair (allowed values or a type, default), not {entry!r}"
        allowed, default = entry
        if not (isinstance(allowed, tuple) and allowed) and allowed not in _TYPES:
            return (f"option_table['{key}'] allows {allowed!r}; give a non-empty tuple of values or one of "
                    f"{', '.join(t.__name__ for t in _TYPES)}")
        try:
            check_option("", table, key, default)
        except BadInput:
            return f"option_table['{key}'] default {default!r} is not allowed by its own entry"
    return None


def describe_table(table: OptionTable) -> str:
    """``form=matmul|einsum, norm=bool (true)``: one line for listings and errors."""
    parts = []
    for key, (allowed, default) in table.items():
        kinds = "|".join(map(str, allowed)) if isinstance(allowed, tuple) else allowed.__name__
        parts.append(f"{key}={kinds} ({default})")
    return ", ".join(parts)
