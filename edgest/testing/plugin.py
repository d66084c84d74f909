"""pytest plugin (``pytest11`` entry point ``edgest``): markers used by edgest's conformance suite."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "toolchain(name): needs the named toolchain installed")
