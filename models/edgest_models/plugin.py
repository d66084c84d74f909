"""Registers the zoo with edgest. Imports no torch: model files load only when a model is built.

Each entry's input shape mirrors its family's ``CONFIGS``; tests/models/test_zoo_registry.py
checks the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from edgest import InputSpec, ModelEntry, ModelSpec, hookimpl

if TYPE_CHECKING:
    import click

PAPERS = {
    "squeezetime": "Zhai et al., No Time to Waste: Squeeze Time into Channel for Mobile Video Understanding, arXiv:2405.08344",
    "emov2": "Zhang et al., EMOv2: Pushing 5M Vision Model Frontier, arXiv:2412.06674",
    "lmuformer": "Liu et al., LMUFormer: Low Complexity Yet Powerful Spiking Model With Legendre Memory Units, ICLR 2024, "
                 "arXiv:2402.04882",
    "vivit": "Arnab et al., ViViT: A Video Vision Transformer, arXiv:2103.15691; Gowda et al., Optimizing ViViT "
             "Training: Time and Memory Reduction for Action Recognition (SFA-ViViT, vivit_fa_*), arXiv:2306.04822",
}

LAYOUTS = {5: "B,C,T,H,W", 4: "B,C,H,W", 3: "B,L,C"}


def _entry(name: str, family: str, shape: tuple[int, ...], classes: int) -> ModelEntry:
    spec = ModelSpec(
        name=name, family=family, input=InputSpec(shape, "float32", LAYOUTS[len(shape)]),
        num_classes=classes, config={"num_classes": classes}, paper=PAPERS[family],
    )
    return ModelEntry(spec, f"edgest_models.{family}:{name}")


def _video(name: str, family: str, frames: int, size: int, classes: int) -> ModelEntry:
    return _entry(name, family, (1, 3, frames, size, size), classes)


def _sequence(name: str, family: str, steps: int, features: int, classes: int) -> ModelEntry:
    return _entry(name, family, (1, steps, features), classes)


def _image(name: str, family: str, size: int, classes: int) -> ModelEntry:
    return _entry(name, family, (1, 3, size, size), classes)


ENTRIES: tuple[ModelEntry, ...] = (
    _video("squeezetime", "squeezetime", 16, 224, 400),
    _video("squeezetime_tiny", "squeezetime", 8, 64, 10),
    _image("emov2_1m", "emov2", 224, 1000),
    _image("emov2_2m", "emov2", 224, 1000),
    _image("emov2_5m", "emov2", 224, 1000),
    _video("emov2_1m_video", "emov2", 8, 224, 400),
    _video("emov2_2m_video", "emov2", 8, 224, 400),
    _video("emov2_5m_video", "emov2", 8, 224, 400),
    _video("emov2_tiny_video", "emov2", 4, 64, 10),
    _sequence("lmuformer", "lmuformer", 128, 128, 35),
    _sequence("lmuformer_spiking", "lmuformer", 128, 128, 35),
    _sequence("lmuformer_tiny", "lmuformer", 16, 16, 10),
    _sequence("lmuformer_spiking_tiny", "lmuformer", 8, 16, 10),
    _video("lmuformer_video", "lmuformer", 16, 112, 400),  # edgest's adaptation: per-frame conv stem
    _video("lmuformer_video_tiny", "lmuformer", 8, 64, 10),
    _video("vivit_fe_b", "vivit", 32, 224, 400),
    _video("vivit_fa_b", "vivit", 32, 224, 400),
    _video("vivit_fe_s", "vivit", 16, 224, 400),
    _video("vivit_fa_s", "vivit", 16, 224, 400),
    _video("vivit_fe_ti", "vivit", 16, 224, 400),
    _video("vivit_fa_ti", "vivit", 16, 224, 400),
    _video("vivit_fe_tiny", "vivit", 8, 64, 10),
    _video("vivit_fa_tiny", "vivit", 8, 64, 10),
)


@hookimpl
def register_models(register: Callable[[ModelEntry], None]) -> None:
    for entry in ENTRIES:
        register(entry)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from edgest_models.train import train_cmd

    cli.add_command(train_cmd)
