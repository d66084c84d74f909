"""The synthetic labelled set that fits a model's input: motion clips or keyword glides, or none.

One place decides it for training (``edgest train``), calibration and the compile's task check.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgest.data.sequences import MAX_CLASSES, SyntheticSequences
from edgest.data.synthetic import CLASSES, SyntheticClips

SyntheticSet = SyntheticClips | SyntheticSequences


def synthetic_set(shape: Sequence[int], layout: str, num_classes: int, size: int, seed: int) -> SyntheticSet | None:
    """``size`` labelled samples for a model input of ``shape`` (batch first) and ``layout``, or None where none fits.

    Samples come without the batch axis; ``batches(B)`` stacks B of them.

    ``B,C,T,H,W`` with 3 channels, square frames of 8+ pixels and 2+ frames: :class:`SyntheticClips`
    (at most 10 classes); ``B,L,C`` with 4+ steps and features: :class:`SyntheticSequences` (at most
    35). ``num_classes`` is clamped into the set's range; a caller that judges labels checks it first.
    """
    shape = tuple(shape)
    if layout == "B,C,T,H,W" and len(shape) == 5 and shape[1] == 3 and shape[3] == shape[4] and shape[2] >= 2 and shape[3] >= 8:
        return SyntheticClips(num_frames=shape[2], image_size=shape[3], size=size, seed=seed,
                              num_classes=min(max(num_classes, 2), len(CLASSES)))
    if layout == "B,L,C" and len(shape) == 3 and shape[1] >= 4 and shape[2] >= 4:
        return SyntheticSequences(steps=shape[1], features=shape[2], size=size, seed=seed,
                                  num_classes=min(max(num_classes, 2), MAX_CLASSES))
    return None


def describe(data: SyntheticSet) -> str:
    """What the set is, for reports: kind, classes and seed."""
    return f"{data.kind} ({data.num_classes} classes), seed {data.seed}"
