"""Registers the zoo with edgest. Imports no torch: model files load only when a model is built.

Each entry's config is its variant's whole config from :mod:`edgest_models.configs` (so every
key is a ``--model-option``), its input shape follows from that config, and its
``shape_options`` let ``--input-shape`` set frames, resolution or sequence size. Its
preprocessing is the release's evaluation pipeline (:data:`_PREPROCESSING`, from each family's
official config), or edgest's synthetic convention for the tiny variants.
tests/models/test_zoo_registry.py checks the specs and the model code agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgest import InputSpec, ModelEntry, ModelSpec, hookimpl
from edgest.records import Preprocessing
from edgest_models.configs import FAMILIES

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

#: families whose built model has a step (streaming) module, and the method that returns it (ModelSpec.step)
STEP_MODULES = {"lmuformer": "step_module"}

LAYOUTS = {5: "B,C,T,H,W", 4: "B,C,H,W", 3: "B,L,C"}
#: which config keys an input shape sets, by layout (ModelEntry.shape_options)
SHAPE_OPTIONS = {
    "B,C,T,H,W": {"num_frames": "T", "image_size": "H,W"},
    "B,C,H,W": {"image_size": "H,W"},
    "B,L,C": {"seq_len": "L", "in_features": "C"},
}


def _shape(config: dict, kind: str) -> tuple[int, ...]:
    if kind == "sequence":
        return 1, config["seq_len"], config["in_features"]
    size = config["image_size"]
    return (1, 3, config["num_frames"], size, size) if kind == "video" else (1, 3, size, size)


#: mmaction2's ImageNet mean/std on 0-255 pixels (SqueezeTime's data_preprocessor), and timm's on 0-1 pixels (EMOv2)
_MMACTION_MEAN, _MMACTION_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: where each family's release preprocessing comes from (its official evaluation config)
_PREPROCESSING: dict[str, dict[str, Any]] = {
    # SqueezeTime configs/recognition/SqueezeTime/SqueezeTime_K400.py val_pipeline: SampleFrames(clip_len=16,
    # frame_interval=4, test_mode), Resize(-1, 256), CenterCrop(224); ActionDataPreprocessor mean/std (RGB, 0-255)
    "squeezetime": {"sampling": "dense", "stride": 4, "resize": 256, "mean": _MMACTION_MEAN, "std": _MMACTION_STD,
                    "pixel_range": "0-255", "source": "SqueezeTime_K400.py val_pipeline (mmaction2)"},
    # EMOv2 configs/emo2/emo2_224.py test_transforms: Resize(int(224 / 0.875)) bicubic, CenterCrop(224), ImageNet mean/std;
    # the video variants are edgest's per-frame adaptation: frames sampled uniformly
    "emov2": {"resize": 256, "mean": _IMAGENET_MEAN, "std": _IMAGENET_STD, "interpolation": "bicubic",
              "source": "EMOv2 configs/emo2/emo2_224.py test_transforms"},
    # scenic projects/vivit/configs/kinetics400: stride 2, min_resize 256, crop_size 224, zero_centering ([-1, 1])
    "vivit": {"sampling": "dense", "stride": 2, "resize": 256, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
              "source": "ViViT scenic configs/kinetics400 (stride 2, min_resize 256, zero_centering)"},
}


def _preprocessing(name: str, family: str, shape: tuple[int, ...]) -> Preprocessing | None:
    """How a video becomes this model's input: the release's evaluation pipeline; edgest's synthetic
    convention for the tiny variants (what ``edgest train`` teaches) and for models with no release."""
    if len(shape) == 3:  # B,L,C sequences (LMUFormer on Speech Commands features): no clips
        return None
    frames, crop = (shape[2] if len(shape) == 5 else 1), (shape[-2], shape[-1])
    if "tiny" in name or family not in _PREPROCESSING:
        source = "edgest synthetic clips (edgest train)" if "tiny" in name else "edgest's adaptation, no release: edgest synthetic convention"
        return Preprocessing(frames=frames, crop=crop, source=source)
    return Preprocessing(frames=frames, crop=crop, **_PREPROCESSING[family])


def _entry(name: str, family: str, kind: str) -> ModelEntry:
    config = dict(FAMILIES[family][name])
    shape = _shape(config, kind)
    layout = LAYOUTS[len(shape)]
    spec = ModelSpec(name=name, family=family, input=InputSpec(shape, "float32", layout),
                     num_classes=config["num_classes"], config=config, paper=PAPERS[family],
                     preprocessing=_preprocessing(name, family, shape), step=STEP_MODULES.get(family, ""))
    return ModelEntry(spec, f"edgest_models.{family}:{name}", dict(SHAPE_OPTIONS[layout]))


ENTRIES: tuple[ModelEntry, ...] = (
    _entry("squeezetime", "squeezetime", "video"),
    _entry("squeezetime_tiny", "squeezetime", "video"),
    _entry("emov2_1m", "emov2", "image"),
    _entry("emov2_2m", "emov2", "image"),
    _entry("emov2_5m", "emov2", "image"),
    _entry("emov2_20m", "emov2", "image"),
    _entry("emov2_1m_video", "emov2", "video"),
    _entry("emov2_2m_video", "emov2", "video"),
    _entry("emov2_5m_video", "emov2", "video"),
    _entry("emov2_20m_video", "emov2", "video"),
    _entry("emov2_tiny_video", "emov2", "video"),
    _entry("lmuformer", "lmuformer", "sequence"),
    _entry("lmuformer_spiking", "lmuformer", "sequence"),
    _entry("lmuformer_tiny", "lmuformer", "sequence"),
    _entry("lmuformer_spiking_tiny", "lmuformer", "sequence"),
    _entry("lmuformer_video", "lmuformer", "video"),  # edgest's adaptation: per-frame conv stem
    _entry("lmuformer_video_tiny", "lmuformer", "video"),
    _entry("vivit_fe_b", "vivit", "video"),
    _entry("vivit_fa_b", "vivit", "video"),
    _entry("vivit_fe_s", "vivit", "video"),
    _entry("vivit_fa_s", "vivit", "video"),
    _entry("vivit_fe_ti", "vivit", "video"),
    _entry("vivit_fa_ti", "vivit", "video"),
    _entry("vivit_fe_tiny", "vivit", "video"),
    _entry("vivit_fa_tiny", "vivit", "video"),
)


@hookimpl
def register_models(register: Callable[[ModelEntry], None]) -> None:
    for entry in ENTRIES:
        register(entry)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from edgest_models.train import train_cmd

    cli.add_command(train_cmd)
