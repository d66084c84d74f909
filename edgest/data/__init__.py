"""Inputs for calibration, checks and task accuracy: synthetic clips and sequences generated in the repo, or a
user's own videos (PyAV); never downloaded."""

from edgest.data.labelled import synthetic_set
from edgest.data.sequences import SyntheticSequences
from edgest.data.synthetic import CLASSES, SyntheticClips
from edgest.data.video import VideoFolder, read_clip

__all__ = ["CLASSES", "SyntheticClips", "SyntheticSequences", "VideoFolder", "read_clip", "synthetic_set"]
