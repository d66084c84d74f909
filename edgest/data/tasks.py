"""The labelled task set a compile judges task top-1 on: synthetic clips or keyword glides.

A user's ``--eval`` folder replaces it (:mod:`edgest.data.eval`), in the same :class:`TaskSet`.

Samples start at :data:`TASK_FIRST_CLIP`, far past what ``edgest train`` trains and validates on
and what calibration draws, so the task figure is measured on inputs the model never saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from edgest.records import ModelSpec

#: first clip index of the labelled task set: far past the clips ``edgest train`` trains and validates on,
#: and a multiple of 2..10 and of 35 (1,008,000 = 2^7 3^2 5^3 7), so labels start at class 0 for any class count
#: of the clip and sequence sets
TASK_FIRST_CLIP = 1_008_000
#: labelled clips per compile when weights are given and the caller names no count: one clip is
#: 0.39 pt of task top-1, so the 1-pt drop limit is resolved (64 clips made one flip a 1.56-pt failure)
TASK_SAMPLES = 256


@dataclass(frozen=True)
class TaskSet:
    """Labelled clips for task top-1 and top-5: inputs per forward call, labels per call, and a description.

    Synthetic (:func:`task_set`) or the user's own (``--eval``, :func:`edgest.data.eval.task_set`:
    ``kind`` "eval", with the clips per class).
    """

    inputs: list[list[np.ndarray]]
    labels: list[np.ndarray]
    source: str
    #: clips per class name (the user's eval set; empty for the synthetic set)
    per_class: dict[str, int] = field(default_factory=dict)
    kind: str = "synthetic"


def task_set(spec: ModelSpec, count: int, seed: int) -> TaskSet | None:
    """``count`` labelled synthetic inputs at the model's input shape, or None where none fits the model.

    Motion clips for ``B,C,T,H,W`` models, keyword glides for ``B,L,C`` ones
    (:func:`~edgest.data.labelled.synthetic_set`), with the compile's seed, starting at sample
    :data:`TASK_FIRST_CLIP`, so neither training (``edgest train``) nor calibration saw them.
    """
    from edgest.data.labelled import describe, synthetic_set

    batch = spec.input.shape[0]
    data = synthetic_set(spec.input.shape, spec.input.layout, spec.num_classes, TASK_FIRST_CLIP + count * batch, seed)
    if count < 1 or spec.num_classes < 2 or data is None:
        return None
    inputs, labels = [], []
    for x, y in data.batches(batch, start=TASK_FIRST_CLIP):
        inputs.append([x])
        labels.append(y)
    return TaskSet(inputs, labels, f"{count * batch} {describe(data)}, samples {TASK_FIRST_CLIP}+")
