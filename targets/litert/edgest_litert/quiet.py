"""Quiet conversions: litert-torch's progress tree, prints, warnings and native logging kept off the console.

litert-torch prints a progress tree, its PT2E annotators ``print()`` notes, it warns that an
exported module is "in training mode", and its native libraries (absl/XLA logging, torchao's
library loader, the converter's op estimate) write to file descriptor 2 past Python's logging.
:func:`quiet` silences all of it while the target converts or quantises, and keeps what native
code wrote (:class:`NativeLog`) so an error message can quote the converter's diagnostics.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Iterator

_MLIR_ERROR = re.compile(r"\berror: (.+)")


class _DropTrainingModeWarning(logging.Filter):
    """litert-torch warns that ``program.module()`` is "in training mode": an exported graph has no
    train/eval switch (its batch norms are already the inference ops), so the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "converted in training mode" not in record.getMessage()


class NativeLog:
    """What native code (absl/XLA logging, torchao's library loader, the MLIR converter) wrote to fd 2."""

    text: str = ""

    def errors(self) -> list[str]:
        """MLIR diagnostics (``loc(...): error: 'tfl.x' op ...``): they name the op the converter could not legalise."""
        return [m.group(1).strip() for m in _MLIR_ERROR.finditer(self.text)]


@contextlib.contextmanager
def _captured_fd2() -> Iterator[NativeLog]:
    """Send fd 2 to a temporary file while the block runs: litert-torch's native libraries log there
    on import and on every conversion, past Python's logging. The text is kept for error messages."""
    import os
    import sys
    import tempfile

    log = NativeLog()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield log
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            log.text = sink.read().decode(errors="replace")


@contextlib.contextmanager
def quiet() -> Iterator[NativeLog]:
    """No progress tree, no prints, no training-mode warning, no deprecation or native-library chatter."""
    # litert-torch's PT2E annotators print() notes ("Relu partition has more than one output node")
    with _captured_fd2() as log, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import litert_torch

        shown = litert_torch.config.show_progress
        litert_torch.config.show_progress = False
        root, drop = logging.getLogger(), _DropTrainingModeWarning()
        root.addFilter(drop)
        try:
            yield log
        finally:
            root.removeFilter(drop)
            litert_torch.config.show_progress = shown
