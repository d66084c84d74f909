"""Capture with ``torch.export`` at static shapes, turning failures into readable errors."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from edgest.errors import Unsupported

if TYPE_CHECKING:
    import torch

_OP = re.compile(r"\b(aten(?:::|\.)[A-Za-z_0-9]+(?:\.[A-Za-z_0-9]+)?)")
_WHERE = re.compile(r"([\w./-]+\.py):(\d+)")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type name."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def describe_failure(exc: BaseException) -> str:
    """Name the op or construct behind an export/lowering failure, with the user code line if known."""
    text = f"{type(exc).__name__}: {exc}"
    where = ""
    for path, line in _WHERE.findall(text):
        if "site-packages" not in path and "/torch/" not in path:
            where = f" at {path}:{line}"
            break
    if "DataDependent" in text or "data-dependent" in text or "data dependent" in text:
        return f"data-dependent control flow (Python branch or shape on a tensor's value){where}"
    op = _OP.search(text)
    if op:
        return f"op {op.group(1)}{where}: {first_line(exc)[:200]}"
    return f"{type(exc).__name__}{where}: {first_line(exc)[:240]}"


def capture(model: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> torch.export.ExportedProgram:
    """``torch.export.export`` (non-strict, static shapes); Unsupported names what failed."""
    import torch

    try:
        return torch.export.export(model, example, strict=False)
    except Exception as exc:  # noqa: BLE001 - any capture failure becomes a one-line error
        raise Unsupported(
            f"torch.export cannot capture the model: {describe_failure(exc)}; "
            "rewrite that construct with tensor ops (torch.where, torch.cond) or static shapes"
        ) from exc
