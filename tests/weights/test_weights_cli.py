"""``edgest compile --weights`` with a checkpoint in the official SqueezeTime release layout, and the CLI's refusals.

The release file goes straight to ``--weights``; the artifact's logits (eager; ONNX under ``slow``) match eager's, eager's
are the source model's, and report.json / report.md record the format. Bad weights are one line,
exit 2, and nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from official_layouts import mmengine_checkpoint, squeezetime_release

from edgest.cli import main
from edgest.testing.stage_log import error_lines


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def _source():
    """squeezetime_tiny with BN affines and statistics unlike its init (and responsive to its input)."""
    from edgest_models.squeezetime import squeezetime_tiny

    from edgest.responsive import responsive

    torch.manual_seed(0)
    return responsive(squeezetime_tiny(), (1, 3, 8, 64, 64), seed=1)


@pytest.mark.parametrize("target", ["eager", pytest.param("onnx", marks=pytest.mark.slow)])  # onnx: ~30 s on 2 cores
def test_release_checkpoint_compiles_and_matches_eager(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    if target == "onnx":
        pytest.importorskip("onnxruntime", reason="the onnx target's runtime is not installed")
    monkeypatch.chdir(tmp_path)
    source = _source()
    ckpt = mmengine_checkpoint(squeezetime_release(source.state_dict()))
    ckpt["meta"]["seed"] = np.int64(0)  # a numpy scalar, as mmengine's meta holds: dropped, never imported
    torch.save(ckpt, "SqueezeTime_K400.pth")
    code, out, err = _cli(capsys, "compile", "--model", "squeezetime_tiny", "--target", target, "--weights",
                          "SqueezeTime_K400.pth", "--samples", "2", "--task-samples", "0", "--out", "run", "--json")
    assert code == 0, err
    report = json.loads(out)
    accuracy = next(c for c in report["checks"] if c["kind"] == "accuracy")
    assert accuracy["status"] == "passed" and accuracy["metrics"]["max_abs"] < 1e-3
    weights = report["weights"]
    assert weights["format"] == "squeezetime-mmaction" and weights["kind"] == "file"
    assert weights["counts"]["loaded"] == len(source.state_dict()) and weights["counts"]["left_at_init"] == 0
    assert [n for n, count in weights["dropped_objects"].items() if n.endswith("multiarray.scalar")], weights
    # eager ran the source model's weights: its reference outputs are the source's on the same seeded inputs
    from edgest.checks import accuracy as acc

    inputs = acc.seeded_inputs([tuple(report["model"]["input"]["shape"])], 2, 0)
    reference = np.load("run/reference.npz")
    with torch.no_grad():
        for i, sample in enumerate(inputs):
            np.testing.assert_allclose(reference[f"s{i}"], source(torch.from_numpy(sample[0])).numpy(), atol=1e-5)
    md = Path("run/report.md").read_text()
    assert "- Weights: loaded from `SqueezeTime_K400.pth`" in md and "format squeezetime-mmaction (state_dict)" in md


def _assert_refused(tmp_path: Path, code: int, out: str, err: str, *words: str) -> None:
    lines = error_lines(err)
    assert code == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith("edgest: error: ") and "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("case", ["another-family", "truncated-safetensors", "unknown-format", "format-without-weights"])
def test_bad_weights_are_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["compile", "--model", "squeezetime_tiny", "--target", "eager", "--out", "run", "--samples", "1"]
    if case == "another-family":
        from edgest_models.emov2 import emov2_tiny_video

        torch.save({"net": emov2_tiny_video().state_dict()}, "EMOv2_1M_224.pth")
        args += ["--weights", "EMOv2_1M_224.pth"]
        words = ["weights 'EMOv2_1M_224.pth' are an emov2 checkpoint", "model 'squeezetime_tiny' is a squeezetime model"]
    elif case == "truncated-safetensors":
        from safetensors.torch import save_file

        save_file(_source().state_dict(), "w.safetensors")
        Path("w.safetensors").write_bytes(Path("w.safetensors").read_bytes()[:-64])
        args += ["--weights", "w.safetensors"]
        words = ["cannot read weights 'w.safetensors' as safetensors: it is truncated"]
    elif case == "unknown-format":
        torch.save(_source().state_dict(), "w.pt")
        args += ["--weights", "w.pt", "--weights-format", "mmcv"]
        words = ["unknown weights format 'mmcv'; available: auto, squeezetime-mmaction"]
    else:
        args += ["--weights-format", "squeezetime-mmaction"]
        words = ["--weights-format squeezetime-mmaction needs a weights file; add --weights FILE"]
    _assert_refused(tmp_path, *_cli(capsys, *args), *words)


def test_weights_format_help_names_every_format() -> None:
    from edgest.cli import compile_cmd
    from edgest.weights import names

    option = next(p for p in compile_cmd.params if p.name == "weights_format")
    assert all(name in (option.help or "") for name in names())
