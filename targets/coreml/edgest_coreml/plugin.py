"""Entry point: registers the Core ML target. Imports no toolchain."""

from __future__ import annotations

from collections.abc import Callable

from edgest import Target, hookimpl
from edgest_coreml.target import CoreMLTarget


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    register(CoreMLTarget)
