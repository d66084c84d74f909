"""Entry point: registers the ONNX target. Imports no toolchain."""

from __future__ import annotations

from collections.abc import Callable

from edgest import Target, hookimpl
from edgest_onnx.target import OnnxTarget


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    register(OnnxTarget)
