"""A deterministic synthetic sequence set for ``B,L,C`` models (LMUFormer's speech-command layout).

Each sequence is a spectrogram-like (steps, features) array: a "keyword" is one formant-like
track, a Gaussian bump along the feature (frequency) axis whose centre glides from a start band
to an end band while the word lasts, over noise. A class is a (start, end) pair, so rising and
falling glides between the same bands are different classes and a model has to use the order of
the steps, not only which bands light up. Onset, length, pitch jitter, width and loudness vary
per sequence; each sequence is mean/variance normalised, as speech front ends do per utterance.
Sequence ``i`` of a set with seed ``s`` depends only on ``(s, i)``. NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgest.data.indexed import IndexedSet

#: start and end bands (fractions of the feature axis); class c glides from STARTS[c % 5] to ENDS[c % 7],
#: which gives 35 distinct (start, end) pairs, as many as Speech Commands' keywords
STARTS = (0.1, 0.9, 0.3, 0.7, 0.5)
ENDS = (0.95, 0.05, 0.8, 0.2, 0.65, 0.35, 0.5)
MAX_CLASSES = len(STARTS) * len(ENDS)


@dataclass(frozen=True)
class SyntheticSequences(IndexedSet):
    """``len(self)`` sequences of shape (steps, features), normalised float32; labels balanced (index mod classes)."""

    steps: int = 128
    features: int = 128
    size: int = 512
    seed: int = 0
    num_classes: int = 10
    noise: float = 0.3

    kind = "synthetic keyword glides"

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= MAX_CLASSES:
            raise ValueError(f"num_classes must be in 2..{MAX_CLASSES}")
        if self.steps < 4 or self.features < 4:
            raise ValueError("sequences need at least 4 steps of 4 features")

    def sample(self, label: int, rng: np.random.Generator) -> np.ndarray:
        """One sequence of class ``label``; ``batches`` stacks them to (B, L, C)."""
        return glide(label, rng, self.steps, self.features, self.noise)


def glide(label: int, rng: np.random.Generator, steps: int, features: int, noise: float) -> np.ndarray:
    """One sequence of class ``label``: the class's band glide at a random onset and length, over noise."""
    start, end = STARTS[label % len(STARTS)], ENDS[label % len(ENDS)]
    onset = rng.uniform(0.0, 0.3) * steps
    length = max(rng.uniform(0.5, 0.7) * steps, 2.0)
    t = np.arange(steps)
    progress = np.clip((t - onset) / length, 0.0, 1.0)
    active = (t >= onset) & (t < onset + length)
    centre = (start + (end - start) * progress + rng.normal(0.0, 0.02)) * (features - 1)
    width = max(1.0, features / 20) * rng.uniform(0.8, 1.2)
    bins = np.arange(features)
    track = rng.uniform(0.8, 1.5) * np.exp(-0.5 * ((bins[None, :] - centre[:, None]) / width) ** 2) * active[:, None]
    x = track + noise * rng.standard_normal((steps, features))
    return ((x - x.mean()) / (x.std() + 1e-6)).astype(np.float32)
