"""Synthetic keyword glides for B,L,C models: determinism, labels, learnability cues, and who uses them."""

from __future__ import annotations

import numpy as np
import pytest

from edgest.data import SyntheticClips, SyntheticSequences, synthetic_set
from edgest.data.calibration import calibration_inputs
from edgest.data.sequences import ENDS, MAX_CLASSES, STARTS
from edgest.pipeline import TASK_FIRST_CLIP, task_set
from edgest.records import InputSpec, ModelSpec


def test_a_sequence_depends_only_on_seed_and_index() -> None:
    a, b = SyntheticSequences(16, 32, size=50, seed=3), SyntheticSequences(16, 32, size=50, seed=3)
    x, y = a[41]
    assert x.shape == (16, 32) and x.dtype == np.float32 and y == 41 % 10
    assert np.array_equal(x, b[41][0]) and not np.array_equal(x, SyntheticSequences(16, 32, size=50, seed=4)[41][0])
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1.0) < 1e-3  # per-sequence normalisation
    xs, ys = next(a.batches(4, start=8))
    assert xs.shape == (4, 16, 32) and ys.tolist() == [8, 9, 0, 1]
    with pytest.raises(IndexError):
        a[50]


def test_every_class_is_its_own_glide_and_rising_differs_from_falling() -> None:
    pairs = {(STARTS[c % len(STARTS)], ENDS[c % len(ENDS)]) for c in range(MAX_CLASSES)}
    assert len(pairs) == MAX_CLASSES == 35
    # the bump's centre band over time, averaged over many noisy sequences: class 0 falls, class 1 rises
    data = SyntheticSequences(64, 64, size=400, seed=0, num_classes=35, noise=0.0)
    centre = {c: np.mean([np.argmax(data[i][0][np.argmax(data[i][0].max(1) > 1)]) for i in range(c, 400, 35)]) for c in (0, 1)}
    late = {c: np.mean([np.argmax(data[i][0][data[i][0].max(1) > 1][-1]) for i in range(c, 400, 35)]) for c in (0, 1)}
    assert late[0] > centre[0] + 20 and late[1] < centre[1] - 20  # class 0: 0.1 -> 0.95, class 1: 0.9 -> 0.05


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="num_classes must be in 2..35"):
        SyntheticSequences(num_classes=36)
    with pytest.raises(ValueError, match="at least 4 steps"):
        SyntheticSequences(steps=2)


def test_the_set_fits_the_layout() -> None:
    assert isinstance(synthetic_set((1, 3, 4, 32, 32), "B,C,T,H,W", 10, 8, 0), SyntheticClips)
    seq = synthetic_set((2, 8, 16), "B,L,C", 35, 8, 0)
    assert isinstance(seq, SyntheticSequences) and (seq.steps, seq.features, seq.num_classes) == (8, 16, 35)
    assert synthetic_set((1, 3, 32, 32), "B,C,H,W", 10, 8, 0) is None
    assert synthetic_set((1, 2, 16), "B,L,C", 10, 8, 0) is None


def test_sequence_models_get_a_task_set_and_calibration_from_the_glides() -> None:
    spec = ModelSpec("m", "f", InputSpec((1, 8, 16), layout="B,L,C"), num_classes=35)
    task = task_set(spec, 40, seed=0)
    assert task.source == f"40 synthetic keyword glides (35 classes), seed 0, samples {TASK_FIRST_CLIP}+"
    assert [lab.tolist() for lab in task.labels[:2]] == [[0], [1]] and task.labels[36].tolist() == [1]
    assert np.array_equal(task.inputs[3][0][0], SyntheticSequences(8, 16, TASK_FIRST_CLIP + 4, 0, 35)[TASK_FIRST_CLIP + 3][0])
    cal = calibration_inputs(spec, size=3)
    assert cal.source == "synthetic keyword glides, seed 0, 8 steps of 16 features"
    assert np.array_equal(cal.inputs[2][0][0], SyntheticSequences(8, 16, 3, 0, 35)[2][0])
    assert task_set(ModelSpec("m", "f", InputSpec((1, 8, 16), layout="B,L,C"), num_classes=0), 4, 0) is None
