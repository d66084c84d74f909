"""Entry point ``example-model`` (group ``edgest``): registers the family. Imports no torch.

Each :class:`edgest.ModelEntry` pairs a spec with its factory as a ``"module:function"``
string, imported only when the model is built, so ``edgest list`` does not import torch or the
network code. The factory is called with ``**spec.config``.
"""

from __future__ import annotations

from collections.abc import Callable

import edgest

FACTORY = "edgest_example_model.net:TinyVideoNet"
PAPER = "example (2+1)D network: Tran et al., A Closer Look at Spatiotemporal Convolutions, arXiv:1711.11248"


def _entry(name: str, frames: int, size: int, classes: int, width: int) -> edgest.ModelEntry:
    spec = edgest.ModelSpec(
        name=name, family="example_video",
        input=edgest.InputSpec((1, 3, frames, size, size), "float32", "B,C,T,H,W"),
        num_classes=classes, config={"num_classes": classes, "width": width}, paper=PAPER,
    )
    return edgest.ModelEntry(spec, FACTORY)


ENTRIES = (
    _entry("example_video_tiny", frames=8, size=32, classes=10, width=8),
    _entry("example_video_small", frames=16, size=64, classes=101, width=16),
)


@edgest.hookimpl
def register_models(register: Callable[[edgest.ModelEntry], None]) -> None:
    for entry in ENTRIES:
        register(entry)
