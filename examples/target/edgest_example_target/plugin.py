"""Entry point ``example-target`` (group ``edgest``): registers the target. Imports no toolchain."""

from __future__ import annotations

from collections.abc import Callable

import edgest
from edgest_example_target.target import Pt2Target


@edgest.hookimpl  # without it edgest never calls the hook (and skips the plugin, naming the fix)
def register_targets(register: Callable[[type[edgest.Target]], None]) -> None:
    register(Pt2Target)
