"""Entry point: registers the CUDA (AOTInductor) target. Imports no toolchain."""

from __future__ import annotations

from collections.abc import Callable

from edgest import Target, hookimpl
from edgest_cuda.target import CudaTarget


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    register(CudaTarget)
