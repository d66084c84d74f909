"""The hooks a plugin may implement. Importing this module imports nothing heavy.

Implementations must be decorated with :data:`hookimpl` (``@edgest.hookimpl``): pluggy ignores
an undecorated function, so edgest refuses a plugin that has one (see :mod:`edgest.plugins`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from edgest.model import ModelEntry
    from edgest.passes.base import Pass
    from edgest.target import Target

hookspec = pluggy.HookspecMarker("edgest")
hookimpl = pluggy.HookimplMarker("edgest")


@hookspec
def register_models(register: Callable[[ModelEntry], None]) -> None:
    """Call ``register(entry)`` once per model this plugin provides."""


@hookspec
def register_passes(register: Callable[[type[Pass]], None]) -> None:
    """Call ``register(cls)`` once per pass class this plugin provides."""


@hookspec
def register_targets(register: Callable[[type[Target]], None]) -> None:
    """Call ``register(cls)`` once per target class this plugin provides."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands to the ``edgest`` command group."""
