"""Errors edgest raises on purpose.

Every user-facing failure is an :class:`EdgestError`; the CLI prints its message on one
line and exits with ``exit_code``. Messages name the problem and what to do about it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, names: Iterable[str]) -> str | None:
    """The name in ``names`` that ``name`` most likely meant: the same name in other case first, else difflib's closest."""
    names = sorted(names)
    same = [n for n in names if n.lower() == name.lower()]
    if same:
        return same[0]
    close = difflib.get_close_matches(name, names, n=1) or difflib.get_close_matches(name.lower(), names, n=1)
    return close[0] if close else None


class EdgestError(Exception):
    """Base class: a failure edgest explains in one line."""

    kind = "error"
    exit_code = 1


class UnknownName(EdgestError):
    """A model, target or pass name that no plugin registered."""

    kind = "unknown_name"
    exit_code = 2

    def __init__(self, what: str, name: str, available: Iterable[str], note: str = "") -> None:
        names = sorted(available)
        msg = f"unknown {what} '{name}'; available: {', '.join(names) or '(none)'}"
        close = closest(name, names)
        if close:
            msg += f"; did you mean '{close}'?"
        if note:  # e.g. why a plugin's names are missing (edgest.plugins.selection_note)
            msg += f" ({note})"
        super().__init__(msg)
        self.what, self.name, self.available = what, name, names


class BadInput(EdgestError):
    """Input the user gave is malformed: a shape, dtype, file or folder."""

    kind = "bad_input"
    exit_code = 2


class Unsupported(EdgestError):
    """An op or construct that capture or a target cannot lower."""

    kind = "unsupported"


class TargetUnavailable(EdgestError):
    """The target's runtime or toolchain is missing on this host."""

    kind = "target_unavailable"


class CheckFailed(EdgestError):
    """A check ran and its result is outside the limits."""

    kind = "check_failed"


class PluginError(EdgestError):
    """A plugin broke the contract (e.g. registered a name twice)."""

    kind = "plugin_error"
