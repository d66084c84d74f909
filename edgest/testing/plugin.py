"""pytest plugin (``pytest11`` entry point ``edgest``): markers used by edgest's conformance suite, and the
``trained_weights`` fixture (:mod:`edgest.testing.trained`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "toolchain(name): needs the named toolchain installed")


@pytest.fixture(scope="session")
def trained_weights(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``get(model)``: a tiny zoo model trained with its default recipe, cached across runs (slow on first use)."""
    from edgest.testing.trained import trained_weights_getter

    return trained_weights_getter(request, tmp_path_factory)
