"""Trained tiny zoo weights for tests, trained once with each model's default recipe and kept in pytest's cache.

A checkpoint is named ``<model>-<key>.pt`` in the cache folder ``edgest-trained``, where the key is a digest
of the files that decide what training produces (the zoo's code, the synthetic clip and sequence data), so an
edit to any of them trains again. Training takes minutes per model: the tests that use these are ``slow``.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

#: pytest cache folder the checkpoints live in (shared by every test module that trains)
CACHE_FOLDER = "edgest-trained"


def sources_key() -> str:
    """A digest (12 hex digits) of the files that decide what ``edgest train`` produces."""
    import edgest_models

    from edgest.data import sequences, synthetic

    digest = hashlib.sha256()
    for path in sorted(Path(edgest_models.__file__).parent.glob("*.py")) + [Path(synthetic.__file__), Path(sequences.__file__)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def trained_weights_getter(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``get(model)``: the path of ``model`` trained with its default recipe, trained on first use.

    Kept in pytest's cache (a fresh temporary folder under ``-p no:cacheprovider``, so it retrains).
    """
    pytest.importorskip("edgest_models.train", reason="edgest-models not installed (pip install -e models)")
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir(CACHE_FOLDER) if cache is not None else tmp_path_factory.mktemp("trained")

    def get(model: str) -> Path:
        from edgest_models.train import train

        path = folder / f"{model}-{sources_key()}.pt"
        if not path.exists():
            scratch = tmp_path_factory.mktemp(model) / "w.pt"
            train(model, scratch)
            shutil.move(scratch, path)
        return path

    return get
