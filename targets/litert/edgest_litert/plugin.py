"""Entry point: registers the LiteRT target. Imports no toolchain."""

from __future__ import annotations

from collections.abc import Callable

from edgest import Target, hookimpl
from edgest_litert.target import LiteRTTarget


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    register(LiteRTTarget)
