"""Entry point ``example-pass`` (group ``edgest``): registers ``fuse-bn``. Imports no torch."""

from __future__ import annotations

from collections.abc import Callable

import edgest
from edgest_example_pass.fuse_bn import FuseBatchNormPass


@edgest.hookimpl
def register_passes(register: Callable[[type[edgest.Pass]], None]) -> None:
    register(FuseBatchNormPass)
