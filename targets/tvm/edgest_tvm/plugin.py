"""Entry point: registers the TVM target. Imports no toolchain."""

from __future__ import annotations

from collections.abc import Callable

from edgest import Target, hookimpl
from edgest_tvm.target import TvmTarget


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    register(TvmTarget)
