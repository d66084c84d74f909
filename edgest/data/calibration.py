"""Calibration inputs for quantisation: synthetic clips, seeded noise, or a folder of ``.npy`` files or videos.

* ``B,C,T,H,W`` models with square frames get :class:`~edgest.data.SyntheticClips` at the
  model's frame count and size, ``B,L,C`` models :class:`~edgest.data.SyntheticSequences`
  (sample ``i`` of the set with the compile's seed, from the start of the set: the part
  ``edgest train`` trains on, never its validation tail).
* Other layouts get seeded standard-normal inputs (what the accuracy check feeds too).
* ``source=DIR`` loads ``DIR/*.npy`` in name order: each file one input of the model's shape,
  with or without the leading batch dimension of 1.
* ``source=DIR`` with no ``.npy`` files but video files (``DIR/*.mp4``, or ``DIR/<class>/*.mp4``;
  see :mod:`edgest.data.video`) decodes them with PyAV at the model's frame count and size, for
  ``B,C,T,H,W`` models; B consecutive clips make one input.

NumPy only (PyAV for videos).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgest.errors import BadInput
from edgest.records import InputSpec, ModelSpec

#: calibration inputs used when the user names no size
DEFAULT_SIZE = 32


@dataclass(frozen=True)
class CalibrationSet:
    """Inputs to calibrate on (one tuple of arrays per forward call) and where they came from."""

    inputs: list[tuple[np.ndarray, ...]]
    source: str

    def __len__(self) -> int:
        return len(self.inputs)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def calibration_inputs(
    spec: ModelSpec | InputSpec, size: int = DEFAULT_SIZE, source: str | Path | None = None, seed: int = 0
) -> CalibrationSet:
    """``size`` calibration inputs for a model with input ``spec`` (see the module docstring)."""
    inp = spec.input if isinstance(spec, ModelSpec) else spec
    shape, layout = tuple(inp.shape), inp.layout
    if size < 1:
        raise BadInput(f"calibration size must be at least 1, not {size}")
    if source is not None:
        return _from_folder(Path(source), shape, size)
    from edgest.data.labelled import synthetic_set

    batch = shape[0]
    classes = spec.num_classes if isinstance(spec, ModelSpec) else 10
    data = synthetic_set(shape, layout, classes, size * batch, seed)
    if data is not None:
        inputs = [(np.stack([data[i * batch + b][0] for b in range(batch)]),) for i in range(size)]
        what = f"{shape[2]} frames at {shape[3]}x{shape[4]}" if len(shape) == 5 else f"{shape[1]} steps of {shape[2]} features"
        return CalibrationSet(inputs, f"{data.kind}, seed {seed}, {what}")
    rng = np.random.default_rng([seed, 0xCA11B])
    inputs = [(rng.standard_normal(shape, dtype=np.float32),) for _ in range(size)]
    return CalibrationSet(inputs, f"seeded normal noise, seed {seed}, {_shape_text(shape)}")


def _from_folder(folder: Path, shape: tuple[int, ...], size: int) -> CalibrationSet:
    if not folder.is_dir():
        raise BadInput(f"calibration folder '{folder}' does not exist or is not a folder")
    files = sorted(folder.glob("*.npy"))
    if not files:
        from edgest.data.video import find_videos

        if find_videos(folder)[0]:
            return _from_videos(folder, shape, size)
        raise BadInput(f"calibration folder '{folder}' has no .npy files (one input of shape {_shape_text(shape)} per file) "
                       "and no video files (.mp4, .avi, .mov, ...)")
    inputs = []
    for path in files[:size]:
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BadInput(f"calibration file '{path}' is not a readable .npy array: {str(exc).splitlines()[0][:120]}") from None
        if arr.shape == shape[1:] and shape[0] == 1:
            arr = arr[None]
        if arr.shape != shape:
            raise BadInput(
                f"calibration file '{path}' has shape {_shape_text(arr.shape) or 'scalar'}; "
                f"the model takes {_shape_text(shape)} (or {_shape_text(shape[1:])} without the batch dim)"
            )
        if not np.issubdtype(arr.dtype, np.floating):
            raise BadInput(f"calibration file '{path}' holds {arr.dtype}; the model takes float32")
        inputs.append((np.ascontiguousarray(arr, dtype=np.float32),))
    return CalibrationSet(inputs, f"{len(inputs)} of {len(files)} .npy files in {folder}")


def _from_videos(folder: Path, shape: tuple[int, ...], size: int) -> CalibrationSet:
    from edgest.data.video import VideoFolder

    if len(shape) != 5 or shape[1] != 3:
        raise BadInput(f"calibration folder '{folder}' holds videos, but the model takes {_shape_text(shape)} inputs; "
                       "videos calibrate B,C,T,H,W models only: give .npy files instead")
    clips = VideoFolder(folder, num_frames=shape[2], size=(shape[3], shape[4]))
    batch = shape[0]
    count = min(size, len(clips) // batch)
    if count < 1:
        raise BadInput(f"calibration folder '{folder}' has {len(clips)} videos; one input of this model takes {batch}")
    inputs = [(np.stack([clips[i * batch + b][0] for b in range(batch)]),) for i in range(count)]
    return CalibrationSet(inputs, f"{count * batch} of {len(clips)} videos in {folder}, {shape[2]} frames at {shape[3]}x{shape[4]}")
