"""A check for tests: code run in a fresh Python prints none of the toolchains' import chatter (edgest.quiet)."""

from __future__ import annotations

import subprocess
import sys

#: what torchao ("Failed to load .../_C_mxfp8...so") and torch's pytree deprecation write to stderr when not quieted
CHATTER_MARKS = ("Failed to load", "_pytree")


def stdout_without_chatter(code: str, timeout_s: float = 300, marks: tuple[str, ...] = CHATTER_MARKS) -> str:
    """Run ``code`` with this interpreter in a new process; fail the test (AssertionError with its stderr) when it
    exits non-zero or its stderr holds any of ``marks`` (:data:`CHATTER_MARKS`); returns its stdout."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not any(mark in proc.stderr for mark in marks), proc.stderr
    return proc.stdout
