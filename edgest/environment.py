"""The ``EDGEST_*`` environment variables a compile or bench reads, checked before any work.

A bad value is one line naming the variable and the fix, as a bad option is; without this check
``EDGEST_LOCK_DIR=/proc`` failed the compile's accuracy check ("runner failed: FileNotFoundError"), and
``EDGEST_USER_CODE_TIMEOUT_S=abc`` was silently 300 s.
"""

from __future__ import annotations

import math
import os
import tempfile

from edgest.errors import BadInput

#: seconds a user's model file may take to import or build when ``EDGEST_USER_CODE_TIMEOUT_S`` is unset
USER_CODE_SECONDS = 300.0


def user_code_seconds() -> float:
    """``EDGEST_USER_CODE_TIMEOUT_S`` (a positive, finite number of seconds), else 300; BadInput for another value."""
    text = os.environ.get("EDGEST_USER_CODE_TIMEOUT_S", "").strip()
    if not text:
        return USER_CODE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise BadInput(f"EDGEST_USER_CODE_TIMEOUT_S={text!r} is not a positive number of seconds; give e.g. 600, "
                       "or unset it (300 s)")
    return value


def lock_dir_problem() -> str:
    """Why ``EDGEST_LOCK_DIR`` cannot hold the timing lock's files (:mod:`edgest.executors.timing`), or ''."""
    from edgest.executors.timing import HostLock, lock_dir

    text = os.environ.get("EDGEST_LOCK_DIR", "")
    if not text:
        return ""
    try:  # the lock's own files, opened as every timing opens them (/proc passes os.access, not this)
        HostLock(lock_dir()).close()
    except OSError:
        return (f"EDGEST_LOCK_DIR={text!r} is not a folder edgest can write its timing lock in; point it at a "
                f"writable folder, or unset it ({tempfile.gettempdir()})")
    return ""


def check_environment() -> None:
    """BadInput naming the first ``EDGEST_*`` variable whose value cannot work (module docstring)."""
    from edgest.executors.timing import policy

    policy()
    user_code_seconds()
    problem = lock_dir_problem()
    if problem:
        raise BadInput(problem)
