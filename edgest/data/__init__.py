"""Input clips for calibration, checks and task accuracy: generated in the repo, never downloaded."""

from edgest.data.synthetic import CLASSES, SyntheticClips

__all__ = ["CLASSES", "SyntheticClips"]
