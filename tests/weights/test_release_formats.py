"""Each family's official release layout loads into edgest's model: values, logits, and the provenance record.

Checkpoints are built from the official key names (:mod:`official_layouts`) around tiny configs; nothing
is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from official_layouts import (
    OfficialSqueezeTimeNet,
    lmu_buffers,
    lmuformer_key,
    mmengine_checkpoint,
    randomize,
    squeezetime_release,
    timm_vit_state,
)

from edgest.errors import BadInput
from edgest.weights import load_weights


def _squeezetime(seed: int = 1, **kw):
    from edgest_models.squeezetime import squeezetime_tiny

    torch.manual_seed(0)
    return randomize(squeezetime_tiny(**kw), seed)


def _same_state(a: torch.nn.Module, b: torch.nn.Module, skip: str = "^$") -> None:
    import re

    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        if not re.match(skip, k):
            assert torch.equal(sa[k], sb[k]), k


# --- SqueezeTime ------------------------------------------------------------------------------------

def test_squeezetime_release_keys_are_the_official_module_tree() -> None:
    from edgest_models.squeezetime import CONFIGS

    c = CONFIGS["squeezetime_tiny"]
    official = OfficialSqueezeTimeNet(c["num_frames"], c["layers"], c["planes"], c["pos_dims"], c["stem_width"]).state_dict()
    release = squeezetime_release(_squeezetime().state_dict())
    assert set(release) == {"backbone.net." + k for k in official} | {"cls_head.fc_cls.weight", "cls_head.fc_cls.bias"}
    assert all(release["backbone.net." + k].shape == v.shape for k, v in official.items())


def test_squeezetime_mmengine_release_loads_exactly(tmp_path: Path) -> None:
    source = _squeezetime()
    torch.save(mmengine_checkpoint(squeezetime_release(source.state_dict())), tmp_path / "SqueezeTime_K400.pth")
    model = _squeezetime(seed=7)
    record = load_weights(model, tmp_path / "SqueezeTime_K400.pth")
    _same_state(model, source)
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))
    n = len(source.state_dict())
    assert record["format"] == "squeezetime-mmaction" and record["source"] == "state_dict"
    assert record["counts"] == {"loaded": n, "renamed": n, "resized": 0, "skipped": 0, "left_at_init": 0, "dropped_objects": 0}
    assert record["renamed"]["backbone.net.layer1.0.conv2.spatial_conv.glo_conv.3.weight"] == "layer1.0.ctl.glo_out.0.weight"
    assert record["renamed"]["cls_head.fc_cls.weight"] == "fc.weight"
    assert len(record["sha256"]) == 64 and record["container"] == "torch zip"


def test_squeezetime_pretrain_loads_backbone_and_leaves_the_head(tmp_path: Path) -> None:
    """The ImageNet-1k pretrain: bare ResNet names, an image classifier, another stem and pos_embed size."""
    source = _squeezetime()
    net = squeezetime_release(source.state_dict(), backbone_only=True)
    net["conv1.weight"] = torch.randn(16, 3, 5, 5)  # an image stem: 3 input channels, not 3 x 8 frames
    big = torch.randn(1, 16, 20, 20)
    net["layer1.0.conv2.spatial_conv.pos_embed"] = big  # pos_dim 20 where the model has 16
    net |= {"fc.weight": torch.randn(1000, 256), "fc.bias": torch.randn(1000)}
    torch.save({"state_dict": net}, tmp_path / "SqueezeTime_in1k_pretrain.pth")
    model, fresh = _squeezetime(seed=7), _squeezetime(seed=7)
    record = load_weights(model, tmp_path / "SqueezeTime_in1k_pretrain.pth")
    _same_state(model, source, skip=r"fc\.|stem\.0\.weight|layer1\.0\.ctl\.pos_embed")
    for k in ("fc.weight", "fc.bias", "stem.0.weight"):  # left at their initialisation
        assert torch.equal(model.state_dict()[k], fresh.state_dict()[k]), k
    expected = F.interpolate(big, size=(16, 16), mode="bilinear", align_corners=True)
    assert torch.allclose(model.layer1[0].ctl.pos_embed, expected)
    assert set(record["left_at_init"]) == {"fc.weight", "fc.bias", "stem.0.weight"}
    assert set(record["skipped"]) == {"fc.weight", "fc.bias", "stem.0.weight"}
    assert list(record["resized"]) == ["layer1.0.ctl.pos_embed"]
    assert any("backbone only" in n for n in record["notes"])


def test_squeezetime_head_of_another_dataset_says_which_option(tmp_path: Path) -> None:
    release = squeezetime_release(_squeezetime(num_classes=51).state_dict())
    torch.save(mmengine_checkpoint(release), tmp_path / "hmdb.pth")
    model = _squeezetime(seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(BadInput, match="head has 51 classes, the model 10; build it with --model-option num_classes=51"):
        load_weights(model, tmp_path / "hmdb.pth")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# --- EMOv2 ------------------------------------------------------------------------------------------

def _emov2(seed: int = 1):
    from edgest_models.emov2 import emov2_tiny_video

    torch.manual_seed(0)
    return randomize(emov2_tiny_video(), seed)


@pytest.mark.parametrize("wrapper", ["bare", "net", "model-dataparallel", "state_dict", "ema-only"])
def test_emov2_release_wrappers(tmp_path: Path, wrapper: str) -> None:
    plain, ema = _emov2(1).state_dict(), _emov2(2).state_dict()
    obj = {"bare": plain, "net": {"net": plain, "net_E": ema, "epoch": 300, "topk_recorder": {"net_top1": [79.4]}},
           "model-dataparallel": {"model": {"module." + k: v for k, v in plain.items()}, "model_ema": ema},
           "state_dict": {"state_dict": plain}, "ema-only": {"net_E": ema}}[wrapper]
    torch.save(obj, tmp_path / "EMOv2.pth")
    model = _emov2(5)
    record = load_weights(model, tmp_path / "EMOv2.pth")
    _same_state(model, _emov2(2) if wrapper == "ema-only" else _emov2(1))
    assert record["format"] == "emov2"
    if wrapper in ("net", "model-dataparallel"):
        assert any("EMA weights" in n and "not used" in n for n in record["notes"])
    if wrapper == "ema-only":
        assert record["source"] == "net_E" and any("EMA weights (net_E) used" in n for n in record["notes"])


def test_emov2_imagenet_head_is_left_at_init_on_a_video_model(tmp_path: Path) -> None:
    source = _emov2(1).state_dict()
    source |= {"head.weight": torch.randn(1000, source["head.weight"].shape[1]), "head.bias": torch.randn(1000)}
    torch.save({"net": source}, tmp_path / "EMOv2_in1k.pth")
    model, fresh = _emov2(5), _emov2(5)
    record = load_weights(model, tmp_path / "EMOv2_in1k.pth")
    _same_state(model, _emov2(1), skip=r"head\.")
    assert all(torch.equal(getattr(model.head, k), getattr(fresh.head, k)) for k in ("weight", "bias"))
    assert set(record["left_at_init"]) == {"head.weight", "head.bias"} and record["counts"]["skipped"] == 2


# --- LMUFormer --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lmuformer_tiny", "lmuformer_spiking_tiny"])
def test_lmuformer_training_script_checkpoint(tmp_path: Path, name: str) -> None:
    import edgest_models.lmuformer as lm

    torch.manual_seed(0)
    source = randomize(getattr(lm, name)(), 1)
    spiking, cfg = source.spiking, lm.CONFIGS[name]
    state = {lmuformer_key(k, spiking): v for k, v in source.state_dict().items()}
    assert ("module.patch_embed.proj_conv1.weight" in state) == spiking
    assert ("module.patch_embed.conv_layers.3.3.running_var" in state) == (not spiking)
    state |= lmu_buffers(0, source.memory_size, cfg["seq_len"])
    torch.save(state, tmp_path / "best_model.pth")
    torch.manual_seed(0)
    model = randomize(getattr(lm, name)(), 4)
    record = load_weights(model, tmp_path / "best_model.pth")
    _same_state(model, source)
    x = torch.randn(2, cfg["seq_len"], cfg["in_features"])
    with torch.no_grad():
        assert torch.equal(model(x), source(x))
    assert record["format"] == "lmuformer" and record["counts"]["skipped"] == 4  # A, B, H, fft_H
    assert all("recomputes" in why for why in record["skipped"].values())


def test_lmuformer_theta_mismatch_is_named(tmp_path: Path) -> None:
    import edgest_models.lmuformer as lm

    source = lm.lmuformer_tiny()
    state = {lmuformer_key(k, False): v for k, v in source.state_dict().items()} | lmu_buffers(0, source.memory_size, 128)
    torch.save(state, tmp_path / "best_model.pth")
    with pytest.raises(BadInput, match="built for 128-step sequences .*, the model for 16"):
        load_weights(lm.lmuformer_tiny(), tmp_path / "best_model.pth")


# --- ViViT from a timm ViT --------------------------------------------------------------------------

def _vivit():
    from edgest_models.vivit import vivit_fe_tiny

    torch.manual_seed(0)
    return vivit_fe_tiny().eval()


def _spatial_reference(model: torch.nn.Module, vit: dict[str, torch.Tensor], frames: torch.Tensor) -> torch.Tensor:
    """A ViT image encoder run by hand on (N, 3, H, W) frames with the timm weights: the per-frame CLS output."""
    tokens = F.conv2d(frames, vit["patch_embed.proj.weight"], vit["patch_embed.proj.bias"], stride=8).flatten(2).transpose(1, 2)
    enc = model.spatial  # same block structure; its weights are the loaded ones, checked equal to the file below
    return enc.encode(tokens)[:, 0]


def test_timm_vit_central_frame_inflation(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    vit = timm_vit_state(dim=64, depth=2, patch=8, grid=8)
    save_file(vit, tmp_path / "model.safetensors")
    model, fresh = _vivit(), _vivit()
    record = load_weights(model, tmp_path / "model.safetensors")
    own = model.state_dict()
    for k, v in vit.items():
        if not k.startswith(("head.", "patch_embed.proj.weight")):
            assert torch.equal(own["spatial." + k], v), k
    clip = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        got = model.spatial(clip)[:, 0]
        want = _spatial_reference(model, vit, clip[0, :, 1::2].transpose(0, 1))  # frame 1 of each 2-frame tubelet
    assert torch.allclose(got, want, atol=1e-5)
    _same_state(model, fresh, skip=r"spatial\.")  # temporal encoder and head at init
    assert record["format"] == "timm-vit" and record["container"] == "safetensors"
    assert set(record["skipped"]) == {"head.weight", "head.bias"}
    assert {k.split(".")[0] for k in record["left_at_init"]} == {"temporal", "head"}
    assert any("central frame: frame 1 of 2" in n for n in record["notes"])


def test_timm_vit_averaged_inflation_and_resized_positions(tmp_path: Path) -> None:
    vit = timm_vit_state(dim=64, depth=2, patch=8, grid=4)
    torch.save({"model": vit}, tmp_path / "vit.pth")
    model = _vivit()
    record = load_weights(model, tmp_path / "vit.pth", weights_format="timm-vit:inflate=average")
    w = model.spatial.patch_embed.proj.weight.reshape(64, 3, 2, 8, 8)
    assert torch.allclose(w[:, :, 0], vit["patch_embed.proj.weight"] / 2) and torch.equal(w[:, :, 0], w[:, :, 1])
    pos = model.spatial.pos_embed
    assert pos.shape == (1, 65, 64) and torch.equal(pos[:, 0], vit["pos_embed"][:, 0])
    assert set(record["resized"]) == {"spatial.patch_embed.proj.weight", "spatial.pos_embed"}
    assert "grid 4x4 -> 8x8" in record["resized"]["spatial.pos_embed"]
    assert any("averaged over 2 frames" in n for n in record["notes"])


def test_timm_vit_of_another_width_is_refused(tmp_path: Path) -> None:
    torch.save(timm_vit_state(dim=32, depth=2, patch=8, grid=8), tmp_path / "vit.pth")
    with pytest.raises(BadInput, match="patch embedding is 32x3x8x8 .*use a ViT with the model's width and patch size"):
        load_weights(_vivit(), tmp_path / "vit.pth")
