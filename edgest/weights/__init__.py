"""Checkpoint readers: edgest's own state dicts, the official releases of each model family, safetensors.

* :mod:`~edgest.weights.safe_unpickle`: torch/mmengine pickles with nothing run or imported;
* :mod:`~edgest.weights.files`: a file's contents, container and sha256;
* :mod:`~edgest.weights.base`: the format contract; one module per release format
  (:mod:`~edgest.weights.squeezetime`, :mod:`~edgest.weights.emov2`, :mod:`~edgest.weights.lmuformer`,
  :mod:`~edgest.weights.timm_vit`) and edgest's own (:mod:`~edgest.weights.native`);
* :mod:`~edgest.weights.formats`: the list, ``--weights-format`` parsing and detection;
* :mod:`~edgest.weights.load`: :func:`load_weights`, which returns the provenance record
  (:mod:`~edgest.weights.provenance`) that a report keeps.

No module here imports torch at import time.
"""

from __future__ import annotations

from edgest.weights.formats import FORMATS, canonical, names, parse_format
from edgest.weights.load import load_weights, mismatches

__all__ = ["FORMATS", "canonical", "load_weights", "mismatches", "names", "parse_format"]
