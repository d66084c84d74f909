"""The synthetic clip set: deterministic, balanced, and only separable with motion."""

from __future__ import annotations

import numpy as np
import pytest

from edgest.data import CLASSES, SyntheticClips


def test_clips_are_deterministic_and_indexable():
    a, b = SyntheticClips(num_frames=8, image_size=32, size=20, seed=3), SyntheticClips(num_frames=8, image_size=32, size=20, seed=3)
    clip, label = a[7]
    assert clip.shape == (3, 8, 32, 32) and clip.dtype == np.float32 and label == 7
    assert np.array_equal(clip, b[7][0])
    assert not np.array_equal(clip, SyntheticClips(num_frames=8, image_size=32, size=20, seed=4)[7][0])


def test_batches_cover_the_set_with_balanced_labels():
    clips = SyntheticClips(num_frames=4, image_size=16, size=30, num_classes=10)
    labels = np.concatenate([y for _, y in clips.batches(8)])
    assert labels.tolist() == [i % 10 for i in range(30)]
    assert np.bincount(labels).tolist() == [3] * 10


def _centroid_path(clip: np.ndarray) -> np.ndarray:
    """Centre of the pixels that differ most from each frame's median (the shape)."""
    grey = np.abs(clip - np.median(clip, axis=(2, 3), keepdims=True)).mean(0)
    out = []
    for frame in grey:
        ys, xs = np.nonzero(frame > frame.max() * 0.5)
        out.append((ys.mean(), xs.mean()))
    return np.array(out)


@pytest.mark.parametrize("action,axis,sign", [("move_right", 1, 1), ("move_left", 1, -1), ("move_down", 0, 1), ("move_up", 0, -1)])
def test_motion_classes_move_the_way_they_say(action, axis, sign):
    clips = SyntheticClips(num_frames=8, image_size=48, size=40, noise=0.0)
    idx = CLASSES.index(action)
    path = _centroid_path(clips[idx][0])
    assert sign * (path[-1, axis] - path[0, axis]) > 5  # pixels


def test_first_frames_do_not_give_the_class_away():
    # the per-class mean of the first frame is nearly the same for every class: time is needed
    clips = SyntheticClips(num_frames=4, image_size=16, size=200, seed=1)
    firsts = {c: [] for c in range(10)}
    for clip, y in (clips[i] for i in range(len(clips))):
        firsts[y].append(clip[:, 0].mean())
    means = np.array([np.mean(v) for v in firsts.values()])
    assert means.std() < 0.1
