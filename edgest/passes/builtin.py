"""Built-in passes, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

from collections.abc import Callable

from edgest.hookspecs import hookimpl
from edgest.passes.base import Pass

#: "module:Class" of every built-in pass; imported when the registry is built (modules must be light)
BUILTIN_PASSES: tuple[str, ...] = (
    "edgest.passes.attention_to_conv:AttentionToConvPass",
    "edgest.passes.quantize:QuantizePass",
)


@hookimpl
def register_passes(register: Callable[[type[Pass]], None]) -> None:
    import importlib

    for ref in BUILTIN_PASSES:
        module, _, name = ref.partition(":")
        register(getattr(importlib.import_module(module), name))
