"""A user's own clips: a folder of video files decoded with PyAV, sampled and normalised like the zoo's inputs.

Layouts: ``DIR/*.mp4`` (unlabelled) or ``DIR/<class_name>/*.mp4`` (labelled by sub-folder name).
Every clip becomes one float32 array (3, T, H, W), the model's frame count and size, through
:func:`edgest.data.preprocessing.read_clip` with the model's preprocessing (``preprocessing=``),
or by default edgest's synthetic convention:

* T frames sampled uniformly over the whole video (``linspace`` from the first frame to the last);
* each frame turned upright as the video's display matrix says (a phone's portrait clip), resized (FFmpeg's
  swscale, bilinear) so its shorter side covers H×W, then centre-cropped;
* RGB in [0, 1] normalised with the synthetic set's ``MEAN``/``STD``, so a model trained with
  ``edgest train`` sees the same value range.

:func:`decode_frames` is the PyAV part: chosen frames, resized and cropped, as uint8.

Evaluating a model on labelled clips (class folders named as in :data:`edgest.data.CLASSES` for
models trained on the synthetic set)::

    clips = VideoFolder("my_clips", num_frames=8, size=(64, 64), classes=CLASSES)
    top1 = clips.top1(lambda x: model(torch.from_numpy(x)).numpy())

or ``edgest_models.train.evaluate("squeezetime_tiny", "ckpt.pt", "my_clips")``.
PyAV (``pip install av``, the ``edgest[video]`` extra) is imported only when a video is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgest.errors import BadInput, TargetUnavailable
from edgest.records import Preprocessing

#: file name endings read as videos (lower case)
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".gif")


def is_video(path: Path) -> bool:
    """True for a file whose name ends in one of :data:`VIDEO_SUFFIXES`."""
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise TargetUnavailable("reading video files needs PyAV; install it with: pip install av") from None
    return av


def read_clip(path: str | Path, num_frames: int, size: tuple[int, int],
              preprocessing: Preprocessing | None = None) -> np.ndarray:
    """One video as a normalised float32 array (3, num_frames, H, W); see the module docstring.

    ``preprocessing`` (a model's, :mod:`edgest.data.preprocessing`) replaces the synthetic
    convention; it is fitted to ``num_frames`` and ``size``.
    """
    from edgest.data import preprocessing as prep

    if num_frames < 1 or size[0] < 1 or size[1] < 1:
        raise BadInput(f"clips need at least 1 frame of 1x1 pixels, not {num_frames} frames of {size[0]}x{size[1]}")
    chosen = prep.fit(preprocessing, num_frames, size) if preprocessing is not None else prep.default(num_frames, size)
    return prep.read_clip(path, chosen)


def decode_frames(path: Path, indices: Callable[[int], np.ndarray], crop: tuple[int, int], resize: int = 0,
                  interpolation: str = "bilinear") -> np.ndarray:
    """The frames ``indices(total)`` of the video at ``path`` as uint8 RGB (T, H, W, 3), each resized and centre-cropped.

    ``resize`` is the shorter side after resizing (0: just cover ``crop``). BadInput naming the
    file when it has no video stream, no frames, or fewer decodable frames than it declares.
    """
    av = _av()
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            total = stream.frames or sum(1 for p in container.demux(stream) if p.size)
            if total < 1:
                raise BadInput(f"video file '{path}' has no frames")
            if not stream.frames:
                container.seek(0)
            wanted = indices(total)
            needed = {int(i) for i in wanted}  # a short video repeats frames: each decoded once
            by_index: dict[int, np.ndarray] = {}
            for i, frame in enumerate(container.decode(stream)):
                if i >= total or len(by_index) == len(needed):
                    break
                if i in needed:
                    by_index[i] = _fit(frame, crop, resize, interpolation.upper())
    except BadInput:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise _unreadable(path, exc) from None
    if any(int(i) not in by_index for i in wanted):
        raise BadInput(f"cannot read video file '{path}': decoded {len(by_index)} of the frames it declares; "
                       "the file is truncated or corrupt")
    return np.stack([by_index[int(i)] for i in wanted])


def probe(path: Path) -> None:
    """Open the video at ``path`` without decoding it (a few ms): BadInput naming the file when it is not a
    readable container with a video stream (an empty, cut or mislabelled file). A file whose end is damaged
    inside a readable container is found only when it is decoded (:func:`decode_frames`)."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            _video_stream(container, path)
    except BadInput:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise _unreadable(path, exc) from None


def _video_stream(container: Any, path: Path) -> Any:
    """The first video stream of an open container; BadInput naming ``path`` when it has none."""
    if not container.streams.video:
        raise BadInput(f"video file '{path}' has no video stream; the file is truncated or not a video")
    return container.streams.video[0]


def _unreadable(path: Path, exc: BaseException) -> BadInput:
    reason = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0][:160] or type(exc).__name__
    return BadInput(f"cannot read video file '{path}': {reason}; check that the file is complete and a video")


def _fit(frame: Any, crop: tuple[int, int], resize: int, interpolation: str) -> np.ndarray:
    """Turned upright as the video's display matrix says, resized so the shorter side is ``resize`` (0: covers the
    crop) and centre-cropped: RGB (H, W, 3) uint8. Phones store a portrait clip as landscape frames and a rotation,
    which players (and FFmpeg's CLI) apply; PyAV does not, so a portrait clip was read lying on its side."""
    height, width = crop
    turns = round(getattr(frame, "rotation", 0) / 90) % 4  # counter-clockwise quarter turns to show it (PyAV >= 14)
    shown_h, shown_w = (frame.width, frame.height) if turns % 2 else (frame.height, frame.width)
    scale = resize / min(shown_h, shown_w) if resize else max(height / shown_h, width / shown_w)
    h, w = max(height, round(shown_h * scale)), max(width, round(shown_w * scale))
    coded_h, coded_w = (w, h) if turns % 2 else (h, w)
    rgb = frame.reformat(width=coded_w, height=coded_h, format="rgb24", interpolation=interpolation).to_ndarray()
    rgb = np.rot90(rgb, turns) if turns else rgb  # np.rot90 turns counter-clockwise, as the display matrix does
    top, left = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(rgb[top:top + height, left:left + width])


def find_videos(folder: str | Path) -> tuple[list[Path], list[str] | None]:
    """Video files under ``folder`` in name order and, for the class-folder layout, each file's class name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"video folder '{folder}' does not exist or is not a folder")
    top = sorted(p for p in folder.iterdir() if is_video(p))
    nested = sorted(p for d in folder.iterdir() if d.is_dir() for p in d.iterdir() if is_video(p))
    if top and nested:
        raise BadInput(f"video folder '{folder}' has videos both at the top and in class sub-folders; "
                       "put every video in a class folder (labelled) or all at the top (unlabelled)")
    if nested:
        return nested, [p.parent.name for p in nested]
    return top, None


@dataclass(frozen=True)
class VideoFolder:
    """Clips from a folder of videos at one frame count and size, with labels where the folder has class folders.

    ``classes`` fixes the label of each class-folder name (e.g. :data:`edgest.data.CLASSES`);
    by default the sorted folder names are the classes. ``preprocessing`` is the model's
    (:func:`edgest.data.preprocessing.for_spec`); None: edgest's synthetic convention.
    """

    root: Path
    num_frames: int
    size: tuple[int, int]
    classes: tuple[str, ...] | None = None
    preprocessing: Preprocessing | None = None
    files: tuple[Path, ...] = field(init=False)
    names: tuple[str, ...] | None = field(init=False)

    def __post_init__(self) -> None:
        root = Path(self.root)
        files, names = find_videos(root)
        if not files:
            raise BadInput(f"video folder '{root}' has no video files ({', '.join(VIDEO_SUFFIXES)}), "
                           "neither at the top nor in class sub-folders")
        classes = self.classes
        if names is not None:
            if classes is None:
                classes = tuple(sorted(set(names)))
            unknown = sorted(set(names) - set(classes))
            if unknown:
                raise BadInput(f"video folder '{root}' has class folders {', '.join(unknown)} that are not classes of "
                               f"the model; classes: {', '.join(classes)}")
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "size", tuple(self.size))
        object.__setattr__(self, "classes", tuple(classes) if classes is not None else None)
        object.__setattr__(self, "files", tuple(files))
        object.__setattr__(self, "names", tuple(names) if names is not None else None)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def labelled(self) -> bool:
        """True when the videos sit in class folders."""
        return self.names is not None

    def label(self, index: int) -> int | None:
        """Class index of clip ``index`` (None when unlabelled)."""
        if self.names is None or self.classes is None:
            return None
        return self.classes.index(self.names[index])

    def __getitem__(self, index: int) -> tuple[np.ndarray, int | None]:
        if not 0 <= index < len(self.files):
            raise IndexError(index)
        return read_clip(self.files[index], self.num_frames, self.size, self.preprocessing), self.label(index)

    def batches(self, batch_size: int, indices: Sequence[int] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """(clips (B,3,T,H,W), labels (B,) or None) over ``indices`` (all clips by default)."""
        order = list(range(len(self))) if indices is None else list(indices)
        for i in range(0, len(order), batch_size):
            items = [self[j] for j in order[i:i + batch_size]]
            labels = None if not self.labelled else np.array([y for _, y in items], dtype=np.int64)
            yield np.stack([c for c, _ in items]), labels

    def top1(self, predict: Callable[[np.ndarray], np.ndarray], batch_size: int = 1) -> float:
        """Fraction of clips whose arg-max of ``predict(clips)`` (logits (B, classes)) is the folder's class."""
        if not self.labelled:
            raise BadInput(f"video folder '{self.root}' is unlabelled; put the videos in class sub-folders to measure top-1")
        correct = 0
        for x, y in self.batches(batch_size):
            correct += int((np.asarray(predict(x)).argmax(-1) == y).sum())
        return correct / len(self)
