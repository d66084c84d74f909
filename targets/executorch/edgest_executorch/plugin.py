"""Entry point: registers the ExecuTorch target. Imports no toolchain."""

from __future__ import annotations

from collections.abc import Callable

from edgest import Target, hookimpl
from edgest_executorch.target import ExecuTorchTarget


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    register(ExecuTorchTarget)
