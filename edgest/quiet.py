"""Toolchains that log on import: the loggers to quiet, and a context that quiets them.

torchao logs a warning per optional CUDA kernel library it cannot load ("Failed to load
.../_C_mxfp8...so") the first time anything imports it, and registers enums that
``torch.utils._pytree`` warns about; on a CPU host both are noise that reads like an error. Code
that may be the first to import such a toolchain (a plugin's quantizer or lowering, a rewrite in
:mod:`edgest.quantize.prequant`) does it inside :func:`quiet_loggers`. Errors still show.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

#: loggers that write import-time chatter when torchao (through nncf, executorch, ...) is first imported
IMPORT_CHATTER = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quiet_loggers(*names: str, no_warnings: bool = False) -> Iterator[None]:
    """Loggers ``names`` (:data:`IMPORT_CHATTER` when none are given) at ERROR inside the block, as they were after;
    ``no_warnings`` also ignores Python warnings there."""
    loggers = [logging.getLogger(n) for n in (names or IMPORT_CHATTER)]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            if no_warnings:
                warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
