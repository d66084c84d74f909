"""Input clips for calibration, checks and task accuracy: synthetic clips generated in the repo, or a user's own
videos (PyAV); never downloaded."""

from edgest.data.synthetic import CLASSES, SyntheticClips
from edgest.data.video import VideoFolder, read_clip

__all__ = ["CLASSES", "SyntheticClips", "VideoFolder", "read_clip"]
