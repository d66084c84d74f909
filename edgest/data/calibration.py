"""Calibration inputs for quantisation: synthetic clips, seeded noise, or a folder of ``.npy`` files or videos.

* ``B,C,T,H,W`` models with square frames get :class:`~edgest.data.SyntheticClips` at the
  model's frame count and size, ``B,L,C`` models :class:`~edgest.data.SyntheticSequences`
  (sample ``i`` of the set with the compile's seed, from the start of the set: the part
  ``edgest train`` trains on, never its validation tail).
* Other layouts get seeded standard-normal inputs (what the accuracy check feeds too).
* ``source=DIR`` loads ``DIR/*.npy`` in name order: each file one input of the model's shape,
  with or without the leading batch dimension of 1.
* ``source=DIR`` with no ``.npy`` files but video files (``DIR/*.mp4``, or ``DIR/<class>/*.mp4``;
  see :mod:`edgest.data.video`) decodes them with PyAV with the model's preprocessing
  (:mod:`edgest.data.preprocessing`, as eval and predict do), for ``B,C,T,H,W`` models; B
  consecutive clips make one input.

A set that fits in :func:`hold_bytes` is built at once and held as a list. A bigger one is
streamed (:class:`StreamedInputs`): each input is made again (generated, loaded or decoded)
whenever a quantizer reads it, so memory holds one input at a time, not the whole set. Either
way the size is checked against the machine's memory before anything is built
(:func:`edgest.resources.check_calibration`), and ``.npy`` files are all validated up front
(the videos of a streamed set are decoded, and a bad one named, when a quantizer reads it).

NumPy only (PyAV for videos).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from edgest import resources
from edgest.errors import BadInput
from edgest.records import InputSpec, ModelSpec

#: calibration inputs used when the user names no size
DEFAULT_SIZE = 32
#: the most a calibration set held in memory may take (a quarter of the available memory, if less)
HOLD_BYTES = 1 << 30

Inputs = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class CalibrationSet:
    """Inputs to calibrate on (one tuple of arrays per forward call) and where they came from."""

    inputs: Sequence[Inputs]
    source: str

    def __len__(self) -> int:
        return len(self.inputs)


class StreamedInputs(Sequence[Inputs]):
    """``count`` inputs made on demand by ``make(i)``; iteration uses ``iterate()`` where the source is sequential.

    Indexing, slicing (a list), ``len`` and repeated iteration work as on a list, so quantizers
    need not know; nothing is kept between reads.
    """

    def __init__(self, count: int, make: Callable[[int], Inputs], iterate: Callable[[], Iterable[Inputs]] | None = None) -> None:
        self._count, self._make, self._iterate = count, make, iterate

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Inputs: ...
    @overload
    def __getitem__(self, index: slice) -> list[Inputs]: ...
    def __getitem__(self, index: int | slice) -> Inputs | list[Inputs]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        i = index + self._count if index < 0 else index
        if not 0 <= i < self._count:
            raise IndexError(index)
        return self._make(i)

    def __iter__(self) -> Iterator[Inputs]:
        if self._iterate is not None:
            return itertools.islice(iter(self._iterate()), self._count)
        return (self._make(i) for i in range(self._count))


def hold_bytes() -> int:
    """How big a calibration set may be and still be held in memory: :data:`HOLD_BYTES`, or a quarter of what is available."""
    available = resources.available_memory()
    return HOLD_BYTES if available is None else min(HOLD_BYTES, available // 4)


def _inputs(count: int, shape: tuple[int, ...], make: Callable[[int], Inputs],
            iterate: Callable[[], Iterable[Inputs]] | None = None) -> Sequence[Inputs]:
    """A list of ``count`` inputs of ``shape`` when they fit :func:`hold_bytes`, else a :class:`StreamedInputs`."""
    streamed = StreamedInputs(count, make, iterate)
    return list(streamed) if count * resources.tensor_bytes(shape) <= hold_bytes() else streamed


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
        return _from_folder(Path(source), shape, size, spec if isinstance(spec, ModelSpec) else None)
    resources.check_calibration(shape, size)  # before a single input is made
    from edgest.data.labelled import synthetic_set

    batch = shape[0]
    classes = spec.num_classes if isinstance(spec, ModelSpec) else 10
    data = synthetic_set(shape, layout, classes, size * batch, seed)
    if data is not None:
        inputs = _inputs(size, shape, lambda i: (np.stack([data[i * batch + b][0] for b in range(batch)]),))
        what = f"{shape[2]} frames at {shape[3]}x{shape[4]}" if len(shape) == 5 else f"{shape[1]} steps of {shape[2]} features"
        return CalibrationSet(inputs, f"{data.kind}, seed {seed}, {what}")

    def noise() -> Iterator[Inputs]:  # one generator drawn in order: the same inputs whether held or streamed
        rng = np.random.default_rng([seed, 0xCA11B])
        while True:
            yield (rng.standard_normal(shape, dtype=np.float32),)

    inputs = _inputs(size, shape, lambda i: next(itertools.islice(noise(), i, None)), noise)
    return CalibrationSet(inputs, f"seeded normal noise, seed {seed}, {_shape_text(shape)}")


def _from_folder(folder: Path, shape: tuple[int, ...], size: int, spec: ModelSpec | None = None) -> CalibrationSet:
    if not folder.is_dir():
        raise BadInput(f"calibration folder '{folder}' does not exist or is not a folder")
    files = sorted(folder.glob("*.npy"))
    if not files:
        from edgest.data.video import find_videos

        if find_videos(folder)[0]:
            return _from_videos(folder, shape, size, spec)
        raise BadInput(f"calibration folder '{folder}' has no .npy files (one input of shape {_shape_text(shape)} per file) "
                       "and no video files (.mp4, .avi, .mov, ...)")
    chosen = files[:size]
    resources.check_calibration(shape, len(chosen))
    load = _inputs(len(chosen), shape, lambda i: (_load_npy(chosen[i], shape),))
    # held: loaded (and checked) now; streamed: each file checked now, one at a time, and loaded again when read
    inputs = load if isinstance(load, list) else _validated(load)
    return CalibrationSet(inputs, f"{len(inputs)} of {len(files)} .npy files in {folder}")


def check_folder(folder: Path, size: int) -> None:
    """Plan-time check of a calibration folder, before the model is known: it exists, holds ``.npy`` files or
    videos, and the first ``size`` videos open (:func:`edgest.data.video.probe`; not decoded). Shapes and values
    are checked when the inputs are read (:func:`calibration_inputs`)."""
    from edgest.data.video import find_videos, probe

    if not folder.is_dir():
        raise BadInput(f"calibration folder '{folder}' does not exist or is not a folder")
    if next(folder.glob("*.npy"), None) is not None:
        return
    videos = find_videos(folder)[0]
    if not videos:
        raise BadInput(f"calibration folder '{folder}' has no .npy files (one model input per file) and no video "
                       "files (.mp4, .avi, .mov, ...)")
    for path in videos[:size]:
        probe(path)


def _validated(inputs: StreamedInputs) -> StreamedInputs:
    """``inputs`` after reading each once (and dropping it), so a bad file is named now, not mid-quantisation."""
    for _ in inputs:
        pass
    return inputs


def _load_npy(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """One calibration file as a float32 array of ``shape``; BadInput naming the file when it is not one."""
    try:  # mapped: the header is checked before a wrong (maybe huge) file is read
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
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
    _check_finite(path, arr)
    return np.array(arr, dtype=np.float32, order="C")


def _check_finite(path: Path, arr: np.ndarray) -> None:
    from edgest.finite import array_problem

    with np.errstate(over="ignore"):  # a float64 value past float32's range is Inf for the model: say so
        problem = array_problem(arr.astype(np.float32, copy=False))  # NaN would make the quantiser's scales NaN
    if problem:
        raise BadInput(f"calibration file '{path}' holds {problem}; fix or remove that file")


def _from_videos(folder: Path, shape: tuple[int, ...], size: int, spec: ModelSpec | None = None) -> CalibrationSet:
    """Clips decoded with the model's preprocessing (:func:`edgest.data.preprocessing.for_spec`; without a spec,
    edgest's synthetic convention), so int8 is calibrated on what eval and predict feed."""
    from edgest.data.preprocessing import describe, for_spec
    from edgest.data.video import VideoFolder

    if len(shape) != 5 or shape[1] != 3:
        raise BadInput(f"calibration folder '{folder}' holds videos, but the model takes {_shape_text(shape)} inputs; "
                       "videos calibrate B,C,T,H,W models only: give .npy files instead")
    prep = for_spec(spec) if spec is not None else None
    clips = VideoFolder(folder, num_frames=shape[2], size=(shape[3], shape[4]), preprocessing=prep)
    batch = shape[0]
    count = min(size, len(clips) // batch)
    if count < 1:
        raise BadInput(f"calibration folder '{folder}' has {len(clips)} videos; one input of this model takes {batch}")
    resources.check_calibration(shape, count)
    inputs = _inputs(count, shape, lambda i: (np.stack([clips[i * batch + b][0] for b in range(batch)]),))
    how = describe(prep) if prep is not None else f"{shape[2]} frames at {shape[3]}x{shape[4]}"
    return CalibrationSet(inputs, f"{count * batch} of {len(clips)} videos in {folder}, {how}")
