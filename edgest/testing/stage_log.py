"""A check for tests: the lines a command wrote on stderr besides its stage log (edgest.progress).

A compile's log holds its stage lines back and drops them when the command fails, so bad input stays
one line, unless a stage ran past :data:`edgest.progress.HEARTBEAT_S` first: then the log has already
shown them with a "still running" line (on a slow or busy machine, a tiny model's build can). Tests
that assert one error line read it through :func:`error_lines`, which accepts the stage log only then.
"""

from __future__ import annotations

import re

#: a plain (non-terminal) progress line: ``12:00:01 compile m → t: build …``
STAGE_LINE = re.compile(r"^\d\d:\d\d:\d\d ")


def error_lines(stderr: str) -> list[str]:
    """The non-blank lines of ``stderr`` that are not its stage log; fails the test (AssertionError) when a
    stage log is there although no stage ran long enough for a heartbeat to show it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    log = [line for line in lines if STAGE_LINE.match(line)]
    assert not log or any(" still running (" in line for line in log), f"stage log shown without a heartbeat:\n{stderr}"
    return [line for line in lines if not STAGE_LINE.match(line)]
