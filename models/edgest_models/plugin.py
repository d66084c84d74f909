"""Registers the zoo with edgest. Imports no torch: model files load only when a model is built."""

from __future__ import annotations

from collections.abc import Callable

from edgest import InputSpec, ModelEntry, ModelSpec, hookimpl

SQUEEZETIME_PAPER = "Zhai et al., No Time to Waste: Squeeze Time into Channel for Mobile Video Understanding, arXiv:2405.08344"


def _video(name: str, family: str, factory: str, frames: int, size: int, classes: int, paper: str) -> ModelEntry:
    spec = ModelSpec(
        name=name, family=family, input=InputSpec((1, 3, frames, size, size), "float32", "B,C,T,H,W"),
        num_classes=classes, config={"num_classes": classes}, paper=paper,
    )
    return ModelEntry(spec, factory)


ENTRIES: tuple[ModelEntry, ...] = (
    _video("squeezetime", "squeezetime", "edgest_models.squeezetime:squeezetime", 16, 224, 400, SQUEEZETIME_PAPER),
    _video("squeezetime_tiny", "squeezetime", "edgest_models.squeezetime:squeezetime_tiny", 8, 64, 10, SQUEEZETIME_PAPER),
)


@hookimpl
def register_models(register: Callable[[ModelEntry], None]) -> None:
    for entry in ENTRIES:
        register(entry)
