"""Entry point ``openvino`` (group ``edgest``): registers the OpenVINO target. Imports no toolchain."""

from __future__ import annotations

from collections.abc import Callable

import edgest
from edgest_openvino.target import OpenVINOTarget


@edgest.hookimpl
def register_targets(register: Callable[[type[edgest.Target]], None]) -> None:
    register(OpenVINOTarget)
