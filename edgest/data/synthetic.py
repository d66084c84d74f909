"""A deterministic synthetic video-clip set whose classes need motion to tell apart.

Every clip shows one shape (random kind, colour, size and start position over a noisy random
background) doing one of ten things: moving right/left/down/up, growing, shrinking, rotating
clockwise/anticlockwise, blinking, or staying still. Any single frame is compatible with every
class, so a model has to use time. Clip ``i`` of a set with seed ``s`` depends only on
``(s, i)``, so calibration and accuracy sets are reproducible and can be sliced freely.
NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgest.data.indexed import IndexedSet

CLASSES: tuple[str, ...] = (
    "move_right", "move_left", "move_down", "move_up", "grow",
    "shrink", "rotate_cw", "rotate_ccw", "blink", "still",
)

#: Kinetics-style per-channel normalisation applied to every clip
MEAN, STD = 0.45, 0.225


@dataclass(frozen=True)
class SyntheticClips(IndexedSet):
    """``len(self)`` clips of shape (3, num_frames, image_size, image_size), normalised float32."""

    num_frames: int = 16
    image_size: int = 112
    size: int = 512
    seed: int = 0
    num_classes: int = len(CLASSES)
    noise: float = 0.05

    kind = "synthetic motion clips"

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(CLASSES):
            raise ValueError(f"num_classes must be in 2..{len(CLASSES)}")
        if self.num_frames < 2 or self.image_size < 8:
            raise ValueError("clips need at least 2 frames of 8x8 pixels")

    def sample(self, label: int, rng: np.random.Generator) -> np.ndarray:
        """One clip of class ``label``; ``batches`` stacks them to (B,3,T,H,W)."""
        return render(CLASSES[label], rng, self.num_frames, self.image_size, self.noise)


def render(action: str, rng: np.random.Generator, frames: int, size: int, noise: float) -> np.ndarray:
    """One normalised clip (3, frames, size, size) of ``action``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    colour = rng.uniform(0.5, 1.0, 3).astype(np.float32) * rng.choice([-1.0, 1.0])
    background = rng.uniform(0.2, 0.5, 3).astype(np.float32)
    kind = rng.choice(["square", "disc", "bar"]) if not action.startswith("rotate") else "bar"
    radius = rng.uniform(0.07, 0.16)
    travel = rng.uniform(0.3, 0.45)
    centre = rng.uniform(0.3, 0.7, 2)
    angle0 = rng.uniform(0, np.pi)
    clip = np.empty((3, frames, size, size), np.float32)
    for t in range(frames):
        p = t / (frames - 1)
        cy, cx, r, angle, visible = centre[0], centre[1], radius, angle0, True
        if action == "move_right":
            cx = centre[1] - travel / 2 + travel * p
        elif action == "move_left":
            cx = centre[1] + travel / 2 - travel * p
        elif action == "move_down":
            cy = centre[0] - travel / 2 + travel * p
        elif action == "move_up":
            cy = centre[0] + travel / 2 - travel * p
        elif action == "grow":
            r = radius * (1.0 + 0.8 * p)  # same start-size distribution as shrink: one frame can't tell
        elif action == "shrink":
            r = radius / (1.0 + 0.8 * p)
        elif action == "rotate_cw":
            angle = angle0 + np.pi * 0.75 * p
        elif action == "rotate_ccw":
            angle = angle0 - np.pi * 0.75 * p
        elif action == "blink":
            visible = t % 2 == 0
        mask = _shape(kind, xx - cx, yy - cy, r, angle) if visible else np.zeros_like(xx, bool)
        frame = np.where(mask[None], (background + 0.5 * colour)[:, None, None], background[:, None, None])
        clip[:, t] = frame + rng.normal(0.0, noise, frame.shape).astype(np.float32)
    return ((clip - MEAN) / STD).astype(np.float32)


def _shape(kind: str, dx: np.ndarray, dy: np.ndarray, r: float, angle: float) -> np.ndarray:
    if kind == "square":
        return (np.abs(dx) < r) & (np.abs(dy) < r)
    if kind == "disc":
        return dx**2 + dy**2 < r**2
    along = np.cos(angle) * dx + np.sin(angle) * dy
    across = -np.sin(angle) * dx + np.cos(angle) * dy
    return (np.abs(along) < 2.2 * r) & (np.abs(across) < 0.45 * r)
