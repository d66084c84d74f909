"""A model's preprocessing applied to a video: the one way edgest turns a video file into a model input.

Evaluation (``--eval``), calibration on videos (``--calibration DIR``) and ``edgest predict`` all
read clips through :func:`read_clip` with the model's :class:`~edgest.records.Preprocessing`
(``ModelSpec.preprocessing``, fitted to the input shape compiled by :func:`for_spec`), so an
artifact is evaluated on exactly what it will be fed. A spec that declares none gets
:func:`default`: edgest's synthetic-clip convention (uniform sampling, the shorter side resized to
cover the input, mean 0.45 / std 0.225 on 0–1 pixels), which is what ``edgest train`` teaches.

The steps (sampling, resize of the shorter side, centre crop, normalisation) follow mmaction2's
test pipeline (``SampleFrames(test_mode=True)``, ``Resize(scale=(-1, S))``, ``CenterCrop``) and
torchvision's ``Resize``/``CenterCrop``, so released checkpoints see what they were validated on.
NumPy only; PyAV is imported when a video is decoded (:mod:`edgest.data.video`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from edgest.data.synthetic import MEAN, STD
from edgest.errors import BadInput
from edgest.records import ModelSpec, Preprocessing

#: the layout whose inputs are clips
CLIP_LAYOUT = "B,C,T,H,W"


def default(frames: int, crop: tuple[int, int]) -> Preprocessing:
    """edgest's own convention (the synthetic clips): uniform frames, cover-resize, centre crop, 0–1 pixels."""
    return Preprocessing(frames=frames, crop=(int(crop[0]), int(crop[1])), mean=(MEAN,) * 3, std=(STD,) * 3,
                         source="edgest synthetic clips (edgest train)")


def fit(prep: Preprocessing, frames: int, crop: tuple[int, int]) -> Preprocessing:
    """``prep`` at another frame count and crop; a fixed ``resize`` keeps its ratio to the crop (256/224 → 183/160)."""
    crop = (int(crop[0]), int(crop[1]))
    if prep.frames == frames and prep.crop == crop:
        return prep
    resize = prep.resize
    if resize and crop != prep.crop:
        resize = max(min(crop), round(resize * min(crop) / min(prep.crop)))
    return replace(prep, frames=int(frames), crop=crop, resize=resize)


def for_spec(spec: ModelSpec) -> Preprocessing | None:
    """The preprocessing that makes one clip of ``spec``'s input: its own (fitted to the input shape) or
    :func:`default`; None when the model does not take ``B,C,T,H,W`` RGB clips (a user's module without a
    layout counts when its input is 5-D with 3 channels)."""
    shape = tuple(spec.input.shape)
    if spec.input.layout not in (CLIP_LAYOUT, "") or len(shape) != 5 or shape[1] != 3:
        return None
    frames, crop = shape[2], (shape[3], shape[4])
    return fit(spec.preprocessing, frames, crop) if spec.preprocessing is not None else default(frames, crop)


def check(prep: Preprocessing) -> None:
    """BadInput naming the field when ``prep`` cannot make a clip (a plugin's spec, a hand-edited report)."""
    problems = []
    if prep.frames < 1 or min(prep.crop) < 1:
        problems.append(f"frames {prep.frames} and crop {prep.crop} must be positive")
    if prep.sampling not in ("uniform", "dense") or prep.stride < 1:
        problems.append(f"sampling '{prep.sampling}' with stride {prep.stride} (uniform, or dense with stride >= 1)")
    if prep.resize and prep.resize < min(prep.crop):
        problems.append(f"resize {prep.resize} is smaller than the crop {prep.crop}")
    if len(prep.mean) != 3 or len(prep.std) != 3 or any(s <= 0 for s in prep.std):
        problems.append("mean and std need 3 values each, std positive")
    if prep.pixel_range not in ("0-1", "0-255") or prep.interpolation not in ("bilinear", "bicubic"):
        problems.append(f"pixel_range '{prep.pixel_range}' (0-1 or 0-255), interpolation '{prep.interpolation}' (bilinear or bicubic)")
    if problems:
        raise BadInput(f"preprocessing {describe(prep)} is not usable: {'; '.join(problems)}; fix the model spec's preprocessing")


def frame_indices(total: int, prep: Preprocessing) -> np.ndarray:
    """Which of a video's ``total`` frames make the clip, in order (repeats where the video is short).

    ``uniform``: ``frames`` indices evenly from the first frame to the last. ``dense``: ``frames``
    indices ``stride`` apart in a window centred in the video, looping past the end of a short one.
    """
    if total < 1:
        raise ValueError("a video without frames has no clip")
    if prep.sampling == "uniform":
        return np.linspace(0, total - 1, prep.frames).round().astype(np.int64)
    span = prep.frames * prep.stride
    start = (total - span + 1) // 2 if total >= span else 0
    return (start + np.arange(prep.frames, dtype=np.int64) * prep.stride) % total


def normalise(frames: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """uint8 RGB frames (T, H, W, 3) → float32 (3, T, H, W) normalised with ``prep``'s mean and std."""
    x = frames.astype(np.float32).transpose(3, 0, 1, 2)
    if prep.pixel_range == "0-1":
        x /= 255.0
    mean = np.asarray(prep.mean, np.float32).reshape(3, 1, 1, 1)
    std = np.asarray(prep.std, np.float32).reshape(3, 1, 1, 1)
    return ((x - mean) / std).astype(np.float32)


def read_clip(path: str | Path, prep: Preprocessing) -> np.ndarray:
    """One video file as the model's clip (3, T, H, W), float32: decoded with PyAV and preprocessed by ``prep``.

    BadInput naming the file when it is not a readable video (no video stream, truncated, corrupt).
    """
    from edgest.data.video import decode_frames

    check(prep)
    frames = decode_frames(Path(path), lambda total: frame_indices(total, prep), prep.crop, prep.resize, prep.interpolation)
    return normalise(frames, prep)


def describe(prep: Preprocessing) -> str:
    """One line for reports: ``16 frames dense stride 4, short side 256, centre crop 224x224, mean/std on 0-255``."""
    sampling = f"dense stride {prep.stride}" if prep.sampling == "dense" else "uniform"
    resize = f"short side {prep.resize}" if prep.resize else "short side to the crop"
    mean, std = ("/".join(f"{x:g}" for x in v) for v in (prep.mean, prep.std))
    text = (f"{prep.frames} frames {sampling}, {resize} ({prep.interpolation}), centre crop {prep.crop[0]}x{prep.crop[1]}, "
            f"mean {mean} std {std} on {prep.pixel_range} RGB")
    return text + (f" ({prep.source})" if prep.source else "")
