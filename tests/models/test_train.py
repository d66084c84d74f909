"""`edgest train`: the recipe learns the synthetic motion task, writes a state_dict compile can load, and evaluates."""

from __future__ import annotations

from pathlib import Path

import edgest_models.plugin
import numpy as np
import pytest
import torch
from edgest_models.train import VAL_FIRST_CLIP, Recipe, evaluate, train

from edgest.errors import BadInput
from edgest.model import load_weights
from edgest.plugins import new_plugin_manager

MODEL = "squeezetime_tiny"  # 10 classes, 8 frames of 64x64: ~35 ms of one core per training step of 8 clips


@pytest.fixture(scope="module")
def registry():
    pm = new_plugin_manager(entry_points=False)
    pm.add(edgest_models.plugin, "models")
    return pm.registry


@pytest.fixture(scope="module")
def trained(registry, tmp_path_factory):
    """A quarter of the default recipe's steps are not enough for 80%, but clearly beat chance (10%)."""
    out = tmp_path_factory.mktemp("train") / "tiny.pt"
    recipe = Recipe(epochs=4, clips_per_epoch=512, val_clips=100, batch_size=8, lr=4e-3)
    return out, train(MODEL, out, recipe, registry=registry)


def test_training_beats_chance_clearly(trained):
    out, result = trained
    assert result.val_top1 >= 0.2, result.history  # twice chance
    assert len(result.history) == 4 and result.train_clips == 4 * 512 and result.lr == 4e-3
    assert not out.with_name(out.name + ".partial").exists()


def test_checkpoint_is_a_plain_state_dict_that_loads(registry, trained):
    out, result = trained
    state = torch.load(out, weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    model = registry.model(MODEL).build()
    load_weights(model, out)
    assert evaluate(MODEL, out, count=100, registry=registry) == pytest.approx(result.val_top1)
    assert evaluate(MODEL, None, count=100, registry=registry) < result.val_top1


def test_evaluate_on_a_folder_of_labelled_videos(registry, trained, tmp_path):
    av = pytest.importorskip("av", reason="PyAV (the edgest[video] extra) is not installed")
    from edgest.data import CLASSES, SyntheticClips
    from edgest.data.synthetic import MEAN, STD

    clips = SyntheticClips(num_frames=8, image_size=64, size=VAL_FIRST_CLIP + 10)
    for i in range(VAL_FIRST_CLIP, VAL_FIRST_CLIP + 10):
        clip, label = clips[i]
        rgb = np.clip((clip * STD + MEAN) * 255, 0, 255).astype(np.uint8).transpose(1, 2, 3, 0)
        path = tmp_path / CLASSES[label] / f"{i}.mp4"
        path.parent.mkdir(exist_ok=True)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("mpeg4", rate=4, options={"qscale": "1"})
            stream.width = stream.height = 64
            for frame in rgb:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
    top1 = evaluate(MODEL, trained[0], tmp_path, registry=registry)
    assert top1 in {k / 10 for k in range(11)}
    (tmp_path / "jump").mkdir()
    (tmp_path / "jump" / "x.mp4").write_bytes((tmp_path / "move_up" / f"{VAL_FIRST_CLIP + 3}.mp4").read_bytes())
    with pytest.raises(BadInput, match="class folders jump that are not classes of the model"):
        evaluate(MODEL, trained[0], tmp_path, registry=registry)


def test_non_video_models_are_refused(registry, tmp_path: Path):
    with pytest.raises(BadInput, match="model 'lmuformer_tiny' takes B,L,C input"):
        train("lmuformer_tiny", tmp_path / "x.pt", registry=registry)
    assert not (tmp_path / "x.pt").exists()
