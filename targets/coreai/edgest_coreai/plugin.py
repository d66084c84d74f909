"""Entry point: registers the Core AI target. Imports no toolchain."""

from __future__ import annotations

from collections.abc import Callable

from edgest import Target, hookimpl
from edgest_coreai.target import CoreAITarget


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    register(CoreAITarget)
