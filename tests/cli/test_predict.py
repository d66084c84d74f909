"""``edgest predict``: a compiled artifact run on video files with its target's runtime, top-5 class names with scores."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import edgest
from edgest.cli import main
from edgest.data import CLASSES, SyntheticClips
from edgest.data.labels import for_classes, label_set
from edgest.data.preprocessing import for_spec, read_clip
from edgest.plugins import get_registry
from edgest.testing.videos import write_video

av = pytest.importorskip("av", reason="PyAV (the edgest[video] extra) is not installed")

MODEL = "squeezetime_tiny"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two videos, stand-in weights, and run folders of eager and onnx compiled with them."""
    from edgest.testing.weights import write_responsive_weights

    root = tmp_path_factory.mktemp("predict")
    data = SyntheticClips(num_frames=10, image_size=80, size=2, seed=4, noise=0.0)
    for i in range(2):
        write_video(root / f"v{i}.mp4", data[i][0])
    weights = write_responsive_weights(get_registry().model(MODEL), root / "w.pt")
    for target in ("eager", "onnx"):
        edgest.compile(MODEL, target, weights=weights, out_dir=root / target, samples=1, latency=None, task_samples=0)
    return root


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, "\n".join(line for line in out.err.splitlines() if not line.startswith("edgest: plugin "))


def _eager_scores(work: Path, video: Path) -> np.ndarray:
    """Softmax of the model with the stand-in weights on ``video``, computed here in PyTorch."""
    import torch

    entry = get_registry().model(MODEL)
    module = entry.build()
    module.load_state_dict(torch.load(work / "w.pt"))
    with torch.no_grad():
        z = module(torch.from_numpy(read_clip(video, for_spec(entry.spec)))[None])[0].double()
    return torch.softmax(z, -1).numpy()


@pytest.mark.parametrize("target", ["eager", "onnx"])
def test_predict_prints_labelled_top5_of_a_run_folder(work, target, capsys):
    videos = [work / "v0.mp4", work / "v1.mp4"]
    code, out, err = _cli(capsys, "predict", str(work / target), *map(str, videos))
    assert code == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0].startswith(f"{MODEL} on {target} ") and "edgest synthetic motion" in lines[0]
    for v, video in enumerate(videos):
        block = lines[1 + 6 * v: 7 + 6 * v]
        assert block[0] == str(video)
        rows = [line.split() for line in block[1:]]
        assert [r[0] for r in rows] == ["1.", "2.", "3.", "4.", "5."]
        expected = _eager_scores(work, video)
        best = np.argsort(-expected)[:5]
        assert [r[1] for r in rows] == [CLASSES[i] for i in best]
        assert [float(r[2]) for r in rows] == pytest.approx([expected[i] for i in best], abs=1e-3)


def test_predict_json_and_a_bare_artifact(work, capsys):
    video = work / "v1.mp4"
    code, out, _ = _cli(capsys, "predict", str(work / "onnx"), str(video), "--json", "--top", "3")
    from_run = json.loads(out)
    assert code == 0 and from_run["target"] == "onnx" and len(from_run["predictions"]) == 1
    top = from_run["predictions"][0]["top"]
    expected = _eager_scores(work, video)
    assert [t["index"] for t in top] == list(np.argsort(-expected)[:3])
    assert [t["class"] for t in top] == [CLASSES[t["index"]] for t in top]
    assert [t["score"] for t in top] == pytest.approx([expected[t["index"]] for t in top], abs=1e-4)
    assert "8 frames uniform" in from_run["preprocessing"]
    code, out, _ = _cli(capsys, "predict", str(work / "onnx" / "model.onnx"), str(video), "--target", "onnx",
                        "--model", MODEL, "--json", "--top", "3")
    assert code == 0 and json.loads(out)["predictions"] == from_run["predictions"]


def test_labels_file_names_the_classes(work, tmp_path, capsys):
    names = [f"action {i}" for i in range(10)]
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    code, out, _ = _cli(capsys, "predict", str(work / "eager"), str(work / "v0.mp4"), "--labels", str(tmp_path / "names.txt"),
                        "--json")
    top = json.loads(out)["predictions"][0]["top"]
    assert code == 0 and [t["class"] for t in top] == [names[t["index"]] for t in top]


@pytest.mark.parametrize("args, words", [
    (["{run}", "{video}", "--labels", "{short}"], ["has 3 class names", "10 classes"]),
    (["{run}/model.onnx", "{video}"], ["bare artifact", "--target"]),
    (["{run}/model.onnx", "{video}", "--target", "onnx"], ["--model NAME", "--input-shape"]),
    (["{run}", "{missing}"], ["video file", "does not exist"]),
    (["{run}", "/dev/null"], ["video file '/dev/null' is not a file"]),  # it said "does not exist"
    (["{bench}", "{video}"], ["is a bench folder, not one run; give one of its cells, e.g.", "cells/m__onnx__fp32'"]),
    (["{run}", "{notvideo}"], ["cannot read video file", "notvideo.mp4"]),
    # a bare file the named target cannot load, or a shape it was not built for: were a runtime's traceback
    (["{run}/reference.npz", "{video}", "--target", "onnx", "--model", MODEL],
     ["reference.npz' cannot be loaded as an artifact of target 'onnx' (", "INVALID_PROTOBUF",
      "give the file `edgest compile --target onnx` wrote"]),
    (["{run}/model.onnx", "{video}", "--target", "onnx", "--model", "squeezetime"],
     ["model.onnx' refused a 1x3x16x224x224 input (", "Got: 16 Expected: 8", "the --model or --input-shape it was"]),
    pytest.param(["{run}/model.onnx", "{video}", "--target", "tvm", "--model", MODEL],
                 ["'model.onnx' is not a TVM library (no ELF header)"],  # said "the unknown library cannot run on this host"
                 marks=pytest.mark.skipif(importlib.util.find_spec("tvm") is None, reason="TVM (apache-tvm) not installed")),
])
def test_bad_input_is_one_line(work, tmp_path, capsys, args, words):
    (tmp_path / "short.txt").write_text("a\nb\nc\n")
    (tmp_path / "notvideo.mp4").write_text("hello")
    (tmp_path / "bench" / "cells" / "m__onnx__fp32").mkdir(parents=True)  # said "a bare artifact; add --target"
    (tmp_path / "bench" / "cells" / "m__onnx__fp32" / "report.json").write_text("{}")
    (tmp_path / "bench" / "bench.json").write_text("{}")
    values = {"run": work / "onnx", "video": work / "v0.mp4", "short": tmp_path / "short.txt",
              "missing": tmp_path / "gone.mp4", "notvideo": tmp_path / "notvideo.mp4", "bench": tmp_path / "bench"}
    code, out, err = _cli(capsys, "predict", *(a.format(**values) for a in args))
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and err.startswith("edgest: error: "), err
    for w in words:
        assert w in err


def test_shipped_label_lists():
    assert len(label_set("kinetics400")) == 400 and label_set("kinetics400")[0] == "abseiling"
    assert len(label_set("kinetics600")) == 600 and len(label_set("hmdb51")) == 51
    assert len(label_set("something_something_v2")) == 174 and len(label_set("speech_commands_v2")) == 35
    for count in (400, 600, 51, 174, 35, 10):
        names, _ = for_classes(count)
        assert len(names) == count == len(set(names))
    assert for_classes(1000) is None


#: targets other than eager and onnx, compiled and predicted where installed and able to run here (make test-slow)
OTHER_TARGETS = ("executorch", "tvm", "litert", "cuda", "coreml", "openvino")


@pytest.mark.slow
@pytest.mark.parametrize("target", OTHER_TARGETS)
def test_predict_with_each_installed_target(work, target, tmp_path, capsys):
    registry = get_registry()
    if target not in registry.targets or importlib.util.find_spec(f"edgest_{target}") is None:
        pytest.skip(f"target '{target}' is not installed")
    cls = registry.target(target)
    if cls.unavailable_reason() or cls.host_unavailable_reason():
        pytest.skip(f"target '{target}' cannot run here: {cls.unavailable_reason() or cls.host_unavailable_reason()}")
    edgest.compile(MODEL, target, weights=work / "w.pt", out_dir=tmp_path / "run", samples=1, latency=None, task_samples=0)
    code, out, err = _cli(capsys, "predict", str(tmp_path / "run"), str(work / "v0.mp4"), "--json")
    assert code == 0, err
    top = json.loads(out)["predictions"][0]["top"]
    expected = _eager_scores(work, work / "v0.mp4")
    assert top[0]["index"] == int(expected.argmax()) and len(top) == 5
    assert top[0]["score"] == pytest.approx(expected.max(), abs=0.02)
