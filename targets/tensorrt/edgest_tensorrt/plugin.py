"""Entry point: registers the TensorRT target. Imports no toolchain."""

from __future__ import annotations

from collections.abc import Callable

from edgest import Target, hookimpl
from edgest_tensorrt.target import TensorRTTarget


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    register(TensorRTTarget)
