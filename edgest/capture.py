"""Capture with ``torch.export`` at static shapes, turning failures into readable errors."""

from __future__ import annotations

import contextlib
import io
import re
from typing import TYPE_CHECKING

from edgest.errors import BadInput, Unsupported

if TYPE_CHECKING:
    import torch

_OP = re.compile(r"\b(aten(?:::|\.)[A-Za-z_0-9]+(?:\.[A-Za-z_0-9]+)?)")
_WHERE = re.compile(r'File "([^"]+\.py)", line (\d+)|([\w./-]+\.py):(\d+)')


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
    for m in _WHERE.finditer(text):
        path, line = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if "site-packages" not in path and "/torch/" not in path and path.startswith(("/", ".")) or "/" not in path:
            where = f" at {path.rsplit('/', 1)[-1]}:{line}"
            break
    if "DataDependent" in text or "data-dependent" in text or "data dependent" in text:
        return f"data-dependent control flow (Python branch or shape on a tensor's value){where}"
    op = _OP.search(text)
    if op:
        return f"op {op.group(1)}{where}: {first_line(exc)[:200]}"
    return f"{type(exc).__name__}{where}: {first_line(exc)[:240]}"


def capture(model: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> torch.export.ExportedProgram:
    """``torch.export.export`` (non-strict, static shapes); Unsupported names what failed."""
    import logging

    import torch

    # torch logs its own guesses about the failing line on stderr; edgest's error line says it once
    quiet = logging.getLogger("torch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        # torch prints the partial graph to stderr when export fails; the error line is enough
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return torch.export.export(model, example, strict=False)
    except SystemExit as exc:  # a forward that calls sys.exit (or argparse) must not end edgest without a word
        raise BadInput(f"the model exited (SystemExit {exc.code}) while torch.export ran its forward; "
                       "remove the sys.exit or argument parsing from forward") from None
    except Exception as exc:  # noqa: BLE001 - any capture failure becomes a one-line error
        raise Unsupported(
            f"torch.export cannot capture the model: {describe_failure(exc)}; "
            "rewrite that construct with tensor ops (torch.where, torch.cond) or static shapes"
        ) from exc
    finally:
        quiet.setLevel(level)


def op_origin(program: torch.export.ExportedProgram, op: str) -> str:
    """Where in the user's code the first call of ``op`` (e.g. ``aten.cummax``) came from, or ''."""
    for node in program.graph.nodes:
        if node.op == "call_function" and str(node.target).startswith(op):
            trace = node.meta.get("stack_trace") or ""
            frames = [line.strip() for line in trace.splitlines() if line.strip().startswith("File ")]
            user = [f for f in frames if "site-packages" not in f and "/torch/" not in f]
            if user:
                m = re.search(r'File "([^"]+)", line (\d+)', user[-1])
                if m:
                    return f"{m.group(1).rsplit('/', 1)[-1]}:{m.group(2)}"
            module = node.meta.get("nn_module_stack") or {}
            if module:
                return f"module {list(module.values())[-1][0] or 'root'}"
    return ""
