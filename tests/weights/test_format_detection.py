"""Detection by structure, --weights-format, and the one-line refusals: another family, unknown keys, broken files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from official_layouts import mmengine_checkpoint, randomize, squeezetime_release, timm_vit_state

from edgest.errors import BadInput
from edgest.weights import canonical, load_weights, parse_format


def _squeezetime(seed: int = 1):
    from edgest_models.squeezetime import squeezetime_tiny

    torch.manual_seed(0)
    return randomize(squeezetime_tiny(), seed)


def _emov2():
    from edgest_models.emov2 import emov2_tiny_video

    torch.manual_seed(0)
    return emov2_tiny_video()


def _one_line(exc: pytest.ExceptionInfo[BadInput], *words: str) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    for w in words:
        assert w in text, f"{w!r} not in {text!r}"
    return text


def test_checkpoint_of_another_family_is_named(tmp_path: Path) -> None:
    torch.save(mmengine_checkpoint(squeezetime_release(_squeezetime().state_dict())), tmp_path / "sq.pth")
    torch.save({"net": _emov2().state_dict()}, tmp_path / "emo.pth")
    torch.save(timm_vit_state(dim=64, depth=2, patch=8, grid=8), tmp_path / "vit.pth")
    with pytest.raises(BadInput) as err:
        load_weights(_emov2(), tmp_path / "sq.pth", model_name="emov2_tiny_video")
    _one_line(err, "are a squeezetime checkpoint (squeezetime-mmaction format)", "model 'emov2_tiny_video' is an emov2 model")
    with pytest.raises(BadInput) as err:
        load_weights(_squeezetime(), tmp_path / "emo.pth", model_name="squeezetime_tiny")
    _one_line(err, "are an emov2 checkpoint (emov2 format)", "model 'squeezetime_tiny' is a squeezetime model")
    with pytest.raises(BadInput) as err:
        load_weights(_squeezetime(), tmp_path / "vit.pth")
    _one_line(err, "are a vivit checkpoint (timm-vit format)")


def test_unrecognised_checkpoint_names_closest_format_and_first_unknown_keys(tmp_path: Path) -> None:
    release = squeezetime_release(_squeezetime().state_dict())
    release["backbone.net.layer1.0.conv2.gate_conv.weight"] = torch.ones(1)  # not an official name
    torch.save(mmengine_checkpoint(release), tmp_path / "odd.pth")
    with pytest.raises(BadInput) as err:
        load_weights(_squeezetime(), tmp_path / "odd.pth", model_name="squeezetime_tiny")
    n = len(release)
    _one_line(err, "are in no format edgest reads for model 'squeezetime_tiny'",
              f"the closest is squeezetime-mmaction ({n - 1} of {n} tensors known)",
              "first unmapped keys: backbone.net.layer1.0.conv2.gate_conv.weight;", "--weights-format")


def test_own_state_dict_of_another_model_keeps_the_key_report(tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "linear.pt")
    with pytest.raises(BadInput) as err:
        load_weights(_squeezetime(), tmp_path / "linear.pt")
    _one_line(err, "do not match the model: missing:", "unexpected: bias, weight")


def test_forced_format(tmp_path: Path) -> None:
    source = _squeezetime()
    torch.save(mmengine_checkpoint(squeezetime_release(source.state_dict())), tmp_path / "sq.pth")
    model = _squeezetime(5)
    assert load_weights(model, tmp_path / "sq.pth", weights_format="squeezetime-mmaction")["format"] == "squeezetime-mmaction"
    assert torch.equal(model.fc.weight, source.fc.weight)
    with pytest.raises(BadInput) as err:
        load_weights(_squeezetime(), tmp_path / "sq.pth", weights_format="timm-vit", model_name="squeezetime_tiny")
    _one_line(err, "--weights-format timm-vit is for vivit models, and model 'squeezetime_tiny' is squeezetime",
              "squeezetime-mmaction")
    with pytest.raises(BadInput) as err:
        load_weights(_squeezetime(), tmp_path / "sq.pth", weights_format="edgest")
    _one_line(err, "do not match the model: missing: fc.bias")


@pytest.mark.parametrize("text, words", [
    ("mmaction", ("unknown weights format 'mmaction'", "available: auto, squeezetime-mmaction", "timm-vit[:inflate=central|average]")),
    ("timm-vit:inflate=middle", ("bad option 'inflate=middle' for weights format 'timm-vit'", "inflate=central|average")),
    ("emov2:ema=yes", ("bad option 'ema=yes' for weights format 'emov2'", "its options: none")),
])
def test_bad_format_text(text: str, words: tuple[str, ...]) -> None:
    with pytest.raises(BadInput) as err:
        parse_format(text)
    _one_line(err, *words)


def test_canonical_format_text() -> None:
    assert canonical(None) is None and canonical("auto") is None
    assert canonical(" timm-vit:inflate=average ") == "timm-vit:inflate=average"


def test_safetensors_state_dict_and_truncated_files(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = _squeezetime()
    save_file(source.state_dict(), tmp_path / "w.safetensors")
    model = _squeezetime(5)
    record = load_weights(model, tmp_path / "w.safetensors")
    assert record["format"] == "edgest" and record["container"] == "safetensors"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
    blob = (tmp_path / "w.safetensors").read_bytes()
    header = int.from_bytes(blob[:8], "little")
    for cut, words in ((5, "shorter than the 8-byte header length"), (8 + header // 2, "its header says"),
                       (len(blob) - 100, f"its header describes {len(blob)} bytes, the file has {len(blob) - 100}")):
        (tmp_path / "cut.safetensors").write_bytes(blob[:cut])
        with pytest.raises(BadInput) as err:
            load_weights(_squeezetime(), tmp_path / "cut.safetensors")
        _one_line(err, "as safetensors: it is truncated", words, "download or export it again")
    (tmp_path / "cut.bin").write_bytes(blob[:-100])  # found by content, whatever the name
    with pytest.raises(BadInput) as err:
        load_weights(_squeezetime(), tmp_path / "cut.bin")
    _one_line(err, "as safetensors: it is truncated")


def test_two_copies_of_a_tensor_are_refused(tmp_path: Path) -> None:
    release = squeezetime_release(_squeezetime().state_dict())
    release["conv1.weight"] = release["backbone.net.conv1.weight"]
    torch.save({"state_dict": release}, tmp_path / "dup.pth")
    with pytest.raises(BadInput) as err:
        load_weights(_squeezetime(), tmp_path / "dup.pth")
    _one_line(err, "hold two tensors for stem.0.weight")


@pytest.mark.parametrize("wrap, prefix, origin", [
    (lambda sd: {"module." + k: v for k, v in sd.items()}, "module.", "DataParallel"),
    (lambda sd: {"state_dict": {"model." + k: v for k, v in sd.items()}, "epoch": 3, "optimizer_states": []}, "model.",
     "PyTorch Lightning"),
])
def test_a_wrapper_prefix_on_every_key_is_stripped_and_recorded(tmp_path: Path, wrap, prefix, origin) -> None:
    source = _squeezetime()
    torch.save(wrap(source.state_dict()), tmp_path / "w.ckpt")
    model = _squeezetime(5)
    record = load_weights(model, tmp_path / "w.ckpt")
    assert record["format"] == "edgest" and record["counts"]["loaded"] == len(source.state_dict())
    assert record["renamed"][prefix + "fc.weight"] == "fc.weight" and torch.equal(model.fc.weight, source.fc.weight)
    [note] = record["notes"]
    assert note.startswith(f"stripped the prefix '{prefix}' every key carried (") and origin in note
    partial = {k: v for k, v in wrap(source.state_dict()).items()}
    inner = partial.get("state_dict", partial)
    del inner[prefix + "fc.bias"]
    torch.save(partial, tmp_path / "part.ckpt")
    with pytest.raises(BadInput) as err:  # stripped, so the missing key is named as the model names it
        load_weights(_squeezetime(), tmp_path / "part.ckpt")
    _one_line(err, "do not match the model: missing: fc.bias;")


@pytest.mark.parametrize("key", ["model_state_dict", "model", "net"])
def test_a_training_checkpoint_dict_holding_the_models_own_state_dict_loads(tmp_path: Path, key: str) -> None:
    source = _squeezetime()  # PyTorch's tutorial saves {"epoch", "model_state_dict", "optimizer_state_dict", ...}
    torch.save({"epoch": 3, key: source.state_dict(), "optimizer_state_dict": {"state": {}, "param_groups": []}},
               tmp_path / "ckpt.pt")  # "model" was read as an unknown SqueezeTime release ("91 of 229 tensors known")
    model = _squeezetime(5)
    record = load_weights(model, tmp_path / "ckpt.pt")
    assert record["format"] == "edgest" and record["counts"]["loaded"] == len(source.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))


def test_a_torch_file_named_safetensors_is_read_by_content(tmp_path: Path) -> None:
    source = _squeezetime()
    torch.save(source.state_dict(), tmp_path / "w.safetensors")
    model = _squeezetime(5)
    record = load_weights(model, tmp_path / "w.safetensors")
    assert record["container"] == "torch zip" and torch.equal(model.fc.weight, source.fc.weight)
    assert record["notes"] == ["'w.safetensors' holds a torch zip file, not safetensors as its name says; read by its content"]
