"""``--eval DIR``: the user's labelled clips replace the synthetic task set; task top-1/top-5 of eager and the
artifact, the drop judged, clip counts per class; bad folders refused in one line with nothing written."""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgest.checks.accuracy import TASK_LIMITS
from edgest.cli import main
from edgest.data import CLASSES, SyntheticClips
from edgest.data.eval import scan, task_set
from edgest.data.preprocessing import for_spec, read_clip
from edgest.errors import BadInput
from edgest.plugins import get_registry
from edgest.testing.stage_log import error_lines
from edgest.testing.videos import write_video

av = pytest.importorskip("av", reason="PyAV (the edgest[video] extra) is not installed")

MODEL = "squeezetime_tiny"  # 1x3x8x64x64, 10 synthetic motion classes
#: clips per class written by the fixture: a few dozen in all, uneven on purpose
COUNTS = {"still": 4, "blink": 3, "move_up": 3, "move_left": 3, "grow": 3, "rotate_cw": 3, "shrink": 3, "move_down": 2}


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``DIR/<class>/*.mp4``: noise-free synthetic clips of 12 frames at 72x72 (resized and cropped to 64x64)."""
    root = tmp_path_factory.mktemp("eval") / "clips"
    data = SyntheticClips(num_frames=12, image_size=72, size=400, seed=11, noise=0.0)
    wanted = dict(COUNTS)
    for i in range(len(data)):
        x, y = data[i]
        if wanted.get(CLASSES[y], 0):
            write_video(root / CLASSES[y] / f"clip{i:03d}.mp4", x)
            wanted[CLASSES[y]] -= 1
    assert not any(wanted.values())
    return root


@pytest.fixture(scope="module")
def stand_in_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgest.testing.weights import write_responsive_weights

    return write_responsive_weights(get_registry().model(MODEL), tmp_path_factory.mktemp("w") / "w.pt")


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def _eager_topk(weights: Path, folder: Path) -> tuple[float, float]:
    """Eager top-1 and top-5 of the model on the folder's videos, computed here without edgest's checks."""
    import torch

    entry = get_registry().model(MODEL)
    module = entry.build()
    module.load_state_dict(torch.load(weights))
    prep = for_spec(entry.spec)
    hits1 = hits5 = 0
    files = sorted(folder.glob("*/*.mp4"))
    for f in files:
        with torch.no_grad():
            logits = module(torch.from_numpy(read_clip(f, prep))[None])[0].numpy()
        label = CLASSES.index(f.parent.name)
        hits1 += int(logits.argmax() == label)
        hits5 += int(label in np.argsort(-logits)[:5])
    return hits1 / len(files), hits5 / len(files)


def test_compile_int8_reports_task_top1_top5_on_the_eval_clips(clips_dir, stand_in_weights, tmp_path, capsys):
    code, out, err = _cli(capsys, "compile", "--model", MODEL, "--target", "onnx", "--precision", "int8",
                          "--weights", str(stand_in_weights), "--eval", str(clips_dir), "--calibration-size", "4",
                          "--samples", "2", "--out", str(tmp_path / "run"), "--json", "-q")
    report = json.loads(out)
    acc = next(c for c in report["checks"] if c["kind"] == "accuracy")
    m = acc["metrics"]
    assert m["task_set_kind"] == "eval" and m["task_samples"] == sum(COUNTS.values())
    assert m["task_per_class"] == {c: COUNTS[c] for c in CLASSES if c in COUNTS}  # in class-index order
    assert f"{sum(COUNTS.values())} clips in {clips_dir}" in m["task_set"]
    top1, top5 = _eager_topk(stand_in_weights, clips_dir)
    assert m["task_top1_eager"] == pytest.approx(top1) and m["task_top5_eager"] == pytest.approx(top5)
    for k in ("top1", "top5"):
        assert 0 <= m[f"task_{k}"] <= 1
        assert m[f"task_{k}_drop_pts"] == pytest.approx(100 * (m[f"task_{k}_eager"] - m[f"task_{k}"]))
    # judged: trained weights given, the int8 limit recorded, and the verdict follows the drop
    assert m["task_judged"] and acc["limits"]["max_task_top1_drop_pts"] == TASK_LIMITS["int8"]["max_task_top1_drop_pts"]
    assert ("task top-1 drop" in acc["reason"]) == (m["task_top1_drop_pts"] > TASK_LIMITS["int8"]["max_task_top1_drop_pts"])
    assert report["model"]["preprocessing"]["frames"] == 8 and report["model"]["preprocessing"]["crop"] == [64, 64]
    assert code == (0 if report["status"] == "passed" else 1), err


def _one_line_refusal(capsys, tmp_path: Path, eval_dir: Path, *words: str) -> None:
    code, out, err = _cli(capsys, "compile", "--model", MODEL, "--target", "eager", "--eval", str(eval_dir),
                          "--out", str(tmp_path / "run"), "--samples", "1")
    lines = [line for line in error_lines(err) if not line.startswith("edgest: plugin ")]  # another plugin's own trouble
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("edgest: error: "), err
    for w in words:
        assert w in lines[0], lines[0]
    assert not (tmp_path / "run").exists()


def test_empty_eval_folder_is_refused(tmp_path, capsys):
    (tmp_path / "clips" / "blink").mkdir(parents=True)
    _one_line_refusal(capsys, tmp_path, tmp_path / "clips", "has no clips", "labels.csv")


def test_unreadable_video_is_refused(tmp_path, clips_dir, capsys):
    bad = tmp_path / "clips"
    shutil.copytree(clips_dir / "still", bad / "still")
    data = (bad / "still" / next(p.name for p in (bad / "still").iterdir())).read_bytes()
    (bad / "blink").mkdir()
    (bad / "blink" / "cut.mp4").write_bytes(data[: len(data) // 3])
    _one_line_refusal(capsys, tmp_path, bad, "cannot read video file", "cut.mp4")


def test_a_cut_video_or_a_wrong_npy_is_refused_when_the_folder_is_scanned_before_any_decoding(tmp_path, clips_dir,
                                                                                           monkeypatch):
    """Plan time opens every clip (a few ms each): a broken file is named before the model is built, not after."""
    spec = get_registry().model(MODEL).spec
    monkeypatch.setattr("edgest.data.video.decode_frames", lambda *a, **k: pytest.fail("scan decoded a clip"))
    bad = tmp_path / "clips"
    shutil.copytree(clips_dir / "still", bad / "still")
    assert len(scan(bad, spec).files) == len(list((clips_dir / "still").iterdir()))
    data = next((bad / "still").iterdir()).read_bytes()
    (bad / "still" / "cut.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(BadInput, match=r"cannot read video file '.*cut.mp4': .*check that the file is complete"):
        scan(bad, spec)
    (bad / "still" / "cut.mp4").write_text("not a video")
    with pytest.raises(BadInput, match=r"cannot read video file '.*cut.mp4'"):
        scan(bad, spec)
    (bad / "still" / "cut.mp4").unlink()
    np.save(bad / "still" / "x.npy", np.zeros((3, 4, 64, 64), np.float32))
    with pytest.raises(BadInput, match=r"eval clip '.*x.npy' is float32 3x4x64x64; the model takes float 3x8x64x64"):
        scan(bad, spec)


def test_class_count_that_does_not_fit_the_model_is_refused(tmp_path, clips_dir, capsys):
    src = next((clips_dir / "still").iterdir())
    for i in range(12):
        (tmp_path / "clips" / f"kind{i}").mkdir(parents=True)
        shutil.copy(src, tmp_path / "clips" / f"kind{i}" / "a.mp4")
    _one_line_refusal(capsys, tmp_path, tmp_path / "clips", "has 12 classes", "has 10", "num_classes=12")


def test_one_unknown_class_is_refused_without_suggesting_a_one_class_model(tmp_path, clips_dir, capsys):
    (tmp_path / "clips" / "cat").mkdir(parents=True)
    shutil.copy(next((clips_dir / "still").iterdir()), tmp_path / "clips" / "cat" / "a.mp4")
    _one_line_refusal(capsys, tmp_path, tmp_path / "clips", "has one class (cat)", "index 0..9")
    assert "num_classes=1" not in capsys.readouterr().err


def test_labels_file_naming_missing_files_is_refused(tmp_path, capsys):
    root = tmp_path / "clips"
    root.mkdir()
    np.save(root / "a.npy", np.zeros((3, 8, 64, 64), np.float32))
    (root / "labels.csv").write_text("file,label\na.npy,blink\ngone.npy,still\n")
    _one_line_refusal(capsys, tmp_path, root, "labels.csv", "1 file(s)", "gone.npy")


def test_labels_file_may_name_clips_outside_the_folder_and_an_absolute_missing_one_is_refused(tmp_path, capsys):
    from edgest.data.eval import fingerprint

    root, elsewhere = tmp_path / "clips", tmp_path / "data"
    root.mkdir()
    elsewhere.mkdir()
    np.save(elsewhere / "a.npy", np.zeros((3, 8, 64, 64), np.float32))
    np.save(elsewhere / "b.npy", np.ones((3, 8, 64, 64), np.float32))
    (root / "labels.csv").write_text(f"file,label\n{elsewhere / 'a.npy'},blink\n../data/b.npy,still\n")
    evalset = scan(root, get_registry().model(MODEL).spec)
    assert evalset.labels == (CLASSES.index("blink"), CLASSES.index("still")) and len(fingerprint(evalset)) == 16
    (root / "labels.csv").write_text(f"file,label\n{elsewhere / 'a.npy'},blink\n/nonexistent/c.npy,still\n")
    _one_line_refusal(capsys, tmp_path, root, "1 file(s)", "(/nonexistent/c.npy)")


def test_labels_file_saved_by_excel_with_a_bom_and_crlf_is_read(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    np.save(root / "a.npy", np.zeros((3, 8, 64, 64), np.float32))
    (root / "labels.csv").write_bytes("file,label\r\na.npy,blink\r\n".encode("utf-8-sig"))
    assert scan(root, get_registry().model(MODEL).spec).labels == (CLASSES.index("blink"),)


def test_labels_file_mixes_npy_clips_videos_names_and_indices(tmp_path, clips_dir):
    spec = get_registry().model(MODEL).spec
    root = tmp_path / "clips"
    root.mkdir()
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 8, 64, 64), dtype=np.float32), rng.standard_normal((1, 3, 8, 64, 64), dtype=np.float32)]
    np.save(root / "a.npy", arrays[0])
    np.save(root / "b.npy", arrays[1])  # with the batch axis of 1
    video = shutil.copy(next((clips_dir / "grow").iterdir()), root / "v.mp4")
    (root / "labels.csv").write_text("file, label\na.npy, Move Up\nb.npy,7\nv.mp4,grow\n")
    evalset = scan(root, spec)
    assert evalset.labels == (CLASSES.index("move_up"), 7, CLASSES.index("grow"))
    assert evalset.per_class() == {"move_up": 1, "grow": 1, CLASSES[7]: 1}
    tasks = task_set(evalset, spec)
    assert [x[0].shape for x in tasks.inputs] == [(1, 3, 8, 64, 64)] * 3 and tasks.kind == "eval"
    assert np.array_equal(tasks.inputs[0][0][0], arrays[0]) and np.array_equal(tasks.inputs[1][0], arrays[1])
    assert np.array_equal(tasks.inputs[2][0][0], read_clip(video, for_spec(spec)))
    np.save(root / "a.npy", np.zeros((3, 4, 64, 64), np.float32))
    with pytest.raises(BadInput, match=r"eval clip '.*a.npy' is float32 3x4x64x64; the model takes float 3x8x64x64"):
        task_set(scan(root, spec), spec)


def test_a_set_bigger_than_memory_allows_is_memory_mapped_and_removed(clips_dir, monkeypatch):
    spec = get_registry().model(MODEL).spec
    evalset = scan(clips_dir, spec)
    held = task_set(evalset, spec)
    monkeypatch.setattr("edgest.data.calibration.hold_bytes", lambda: 0)
    mapped = task_set(evalset, spec)
    assert all(isinstance(x[0], np.memmap) for x in mapped.inputs) and not isinstance(held.inputs[0][0], np.memmap)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(held.inputs, mapped.inputs))
    assert [y.tolist() for y in mapped.labels] == [y.tolist() for y in held.labels]
    folder = Path(mapped.inputs[0][0].filename).parent
    assert folder.is_dir()
    del mapped
    gc.collect()
    assert not folder.exists()


def test_bench_refuses_an_eval_folder_before_any_cell_and_keys_the_cache_on_it(tmp_path, clips_dir):
    from edgest.bench import _eval_key, run_bench

    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="has no clips"):
        run_bench([MODEL], ["eager"], ["fp32"], tmp_path / "bench", eval_dir=tmp_path / "empty")
    assert not (tmp_path / "bench").exists()
    copy = shutil.copytree(clips_dir, tmp_path / "clips")
    reg = get_registry()
    key = _eval_key(copy, [MODEL], {}, reg)
    assert key and key == _eval_key(copy, [MODEL], {}, reg)
    first = next((copy / "still").iterdir())
    first.write_bytes(first.read_bytes() + b"\0")  # one clip changed: the cells compile again
    assert _eval_key(copy, [MODEL], {}, reg) != key


@pytest.mark.slow
def test_trained_int8_on_the_eval_clips(clips_dir, tmp_path, capsys, trained_weights):
    weights = trained_weights(MODEL)
    _, out, _ = _cli(capsys, "compile", "--model", MODEL, "--target", "onnx", "--precision", "int8", "--weights",
                     str(weights), "--eval", str(clips_dir), "--out", str(tmp_path / "run"), "--json", "-q")
    m = next(c for c in json.loads(out)["checks"] if c["kind"] == "accuracy")["metrics"]
    top1, top5 = _eager_topk(weights, clips_dir)
    assert m["task_top1_eager"] == pytest.approx(top1) and m["task_top5_eager"] == pytest.approx(top5)
    assert top1 >= 0.8 and top5 >= max(top1, 0.9)  # the trained model recognises its kind of motion in video files
    assert m["task_judged"] and m["task_top1_drop_pts"] <= TASK_LIMITS["int8"]["max_task_top1_drop_pts"], m
