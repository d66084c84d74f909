"""Click's usage errors as edgest's one line: ``edgest: error: <problem>; <fix>``.

Click prints three lines (``Usage:``, ``Try ... --help``, ``Error: ...``) for a bad option value,
a missing or unknown option, or a bad choice. edgest prints one line like every other error,
naming the option and what it takes, and exits 2. Also home of :class:`FiniteFloat`, the
option type for budgets and other figures where NaN and infinity make no sense.
"""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A float option that refuses ``nan``, ``inf`` and ``-inf`` (and, with bounds, values outside them)."""

    name = "finite number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.types.FloatParamType.convert(self, value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        """The help's range, none when unbounded (click's own reads ``x<=None`` there)."""
        return "" if self.min is None and self.max is None else super()._describe_range()


#: seeds NumPy and torch both take
SEED = click.IntRange(0, 2**32 - 1)


def _sentence(text: str) -> str:
    """One line, no trailing full stop, lower-case first letter (unless it starts a NAME)."""
    text = " ".join(text.split()).rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _bound(value: float | int, kind: str) -> str:
    return str(int(value)) if kind == "an integer" or float(value).is_integer() else f"{value:g}"


def expects(ptype: click.ParamType) -> str:
    """What a value of ``ptype`` must be, in words: "an integer from 1 to 256", "one of a, b"."""
    if isinstance(ptype, click.Choice):
        return "one of " + ", ".join(map(str, ptype.choices))
    if isinstance(ptype, (click.IntRange, click.FloatRange)):
        kind = "an integer" if isinstance(ptype, click.IntRange) else ("a finite number" if isinstance(ptype, FiniteFloat) else "a number")
        lo, hi = ptype.min, ptype.max
        if lo is not None and hi is not None:
            if not (ptype.min_open or ptype.max_open):
                return f"{kind} from {_bound(lo, kind)} to {_bound(hi, kind)}"
            return (f"{kind} {'above' if ptype.min_open else 'of at least'} {_bound(lo, kind)} "
                    f"and {'below' if ptype.max_open else 'at most'} {_bound(hi, kind)}")
        if lo is not None:
            return f"{kind} {'above' if ptype.min_open else 'of at least'} {_bound(lo, kind)}"
        if hi is not None:
            return f"{kind} {'below' if ptype.max_open else 'of at most'} {_bound(hi, kind)}"
        return kind
    if isinstance(ptype, click.types.IntParamType):
        return "an integer"
    if isinstance(ptype, click.types.FloatParamType):
        return "a number"
    if isinstance(ptype, click.Path):
        return "a file path" if not ptype.dir_okay else ("a folder path" if not ptype.file_okay else "a path")
    return f"a valid {ptype.name}"


def _param_name(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return (param.name or "argument").upper()


def _help_hint(exc: click.UsageError) -> str:
    path = exc.ctx.command_path if exc.ctx is not None else "edgest"
    return f"see '{path} --help'"


def _suggest(possibilities: list[str] | None, hint: str) -> str:
    """"did you mean 'x'? (see ...)" when click found close names, else the hint alone."""
    if not possibilities:
        return hint
    return "did you mean " + " or ".join(f"'{p}'" for p in possibilities[:3]) + f"? ({hint})"


def _fix(exc: click.UsageError) -> str:
    hint = _help_hint(exc)
    param = getattr(exc, "param", None)
    if isinstance(exc, click.MissingParameter) and param is not None:
        verb = "add" if isinstance(param, click.Option) else "give"
        return f"{verb} {_param_name(param)} ({hint})"
    if isinstance(exc, click.BadParameter) and param is not None:
        if isinstance(param, click.Option):
            return f"pass {_param_name(param)} {expects(param.type)} ({hint})"
        return f"use {expects(param.type)} for {_param_name(param)} ({hint})"
    if isinstance(exc, click.NoSuchOption):
        return _suggest(exc.possibilities, f"{hint} for its options")
    if type(exc).__name__ == "NoSuchCommand" or exc.message.startswith("No such command"):
        return _suggest(getattr(exc, "possibilities", None), f"{hint} for the commands")
    if isinstance(exc, click.BadOptionUsage):
        return f"give {exc.option_name} a value ({hint})"
    return hint


def _problem(exc: click.UsageError) -> str:
    if isinstance(exc, click.NoSuchOption):
        return f"no such option '{exc.option_name}'"
    if type(exc).__name__ == "NoSuchCommand":
        return _sentence(exc.message)
    return _sentence(exc.format_message())


def usage_line(exc: click.UsageError) -> str:
    """``<problem>; <fix>`` for a click usage error, on one line (without the ``edgest: error:`` prefix)."""
    return f"{_problem(exc)}; {_fix(exc)}"


def click_error_line(exc: click.ClickException) -> str:
    """One line for any other click error (e.g. a file click could not open)."""
    return f"{_sentence(exc.format_message())}; check the arguments (see 'edgest --help')"
