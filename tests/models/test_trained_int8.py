"""int8 with trained weights for every tiny zoo video model on ONNX and ExecuTorch: the limits of
issues 4 and 6 (top-1 agreement >= 95 %, task top-1 drop <= 1 pt on the labelled synthetic clips).

Each model is trained with its default ``edgest train`` recipe (minutes of one core each, ~17 min for
all five), so these run with the slow tests (``make test-slow``). Checkpoints are kept in pytest's
cache, keyed by the sources that decide them (the zoo, the training code, the clip generator), so a
second run only compiles.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path

import edgest_models
import pytest
from edgest_models.train import train

import edgest

MODELS = ("squeezetime_tiny", "lmuformer_video_tiny", "vivit_fe_tiny", "vivit_fa_tiny", "emov2_tiny_video")
TARGETS = ("onnx", "executorch")


def _sources_key() -> str:
    """A digest of the files that decide what training produces."""
    import edgest.data.synthetic as synthetic

    digest = hashlib.sha256()
    for path in sorted(Path(edgest_models.__file__).parent.glob("*.py")) + [Path(synthetic.__file__)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def trained_weights(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``get(model)``: the path of ``model`` trained with its default recipe, trained on first use."""
    cache = request.config.cache
    folder = cache.mkdir("edgest-trained") if cache is not None else tmp_path_factory.mktemp("trained")
    key = _sources_key()

    def get(model: str) -> Path:
        path = folder / f"{model}-{key}.pt"
        if not path.exists():
            scratch = tmp_path_factory.mktemp(model) / "w.pt"
            train(model, scratch)
            shutil.move(scratch, path)  # a run stopped mid-training leaves no checkpoint behind
        return path

    return get


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model", MODELS)
def test_int8_with_trained_weights_meets_the_task_limits(model, target, trained_weights, tmp_path):
    if importlib.util.find_spec(f"edgest_{target}") is None:
        pytest.skip(f"target '{target}' not installed (pip install -e targets/{target})")
    report = edgest.compile(model, target, out_dir=tmp_path / "run", precision="int8", weights=trained_weights(model),
                            latency=None)
    m = report.check("accuracy").metrics
    assert m["task_judged"] and m["task_samples"] == 256
    assert report.status == "passed", (report.error, {k: m.get(k) for k in (
        "sqnr_db", "top1_agreement", "task_top1_eager", "task_top1", "task_top1_drop_pts")})
    assert m["top1_agreement"] >= 0.95 and m["task_top1_drop_pts"] <= 1.0
