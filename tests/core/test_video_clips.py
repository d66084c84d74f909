"""User clips: a folder of videos decoded with PyAV, sampled, resized and normalised like the zoo's inputs."""

from __future__ import annotations


import numpy as np
import pytest

from edgest.data import CLASSES, SyntheticClips
from edgest.data.calibration import calibration_inputs
from edgest.data.synthetic import MEAN, STD
from edgest.data.video import VideoFolder, read_clip
from edgest.errors import BadInput
from edgest.records import InputSpec
from edgest.testing.videos import write_video

av = pytest.importorskip("av", reason="PyAV (the edgest[video] extra) is not installed")

LOW, HIGH = (0 - MEAN) / STD, (1 - MEAN) / STD


@pytest.fixture(scope="module")
def clips():
    return SyntheticClips(num_frames=8, image_size=32, size=4, seed=5, noise=0.0)


def test_read_back_shape_range_and_content(tmp_path, clips):
    clip = clips[0][0]
    path = write_video(tmp_path / "a.mp4", clip)
    x = read_clip(path, 8, (32, 32))
    assert x.shape == (3, 8, 32, 32) and x.dtype == np.float32
    assert LOW - 1e-6 <= x.min() and x.max() <= HIGH + 1e-6
    # lossy codec and 4:2:0 chroma: close to the source, and much closer to it than to another clip
    assert np.corrcoef(x.ravel(), clip.ravel())[0, 1] > 0.9
    assert np.abs(x - clip).mean() < 0.5 * np.abs(x - clips[1][0]).mean()


def test_uniform_sampling_resize_and_centre_crop(tmp_path, clips):
    path = write_video(tmp_path / "a.mp4", clips[0][0])
    half = read_clip(path, 4, (32, 32))  # frames 0, 2, 5, 7 of 8
    full = read_clip(path, 8, (32, 32))
    assert np.array_equal(half, full[:, [0, 2, 5, 7]])
    assert read_clip(path, 12, (32, 32)).shape == (3, 12, 32, 32)  # a short video repeats frames
    wide = np.concatenate([np.full((3, 8, 32, 16), LOW, np.float32), clips[1][0], np.full((3, 8, 32, 16), HIGH, np.float32)], axis=3)
    crop = read_clip(write_video(tmp_path / "wide.mp4", wide), 8, (16, 16))  # 32x64 -> 16x32 -> centre 16x16
    assert crop.shape == (3, 8, 16, 16)
    assert np.abs(crop.mean() - clips[1][0].mean()) < 0.2 and crop.min() > LOW + 0.5 and crop.max() < HIGH - 0.5


def test_class_folders_give_labels(tmp_path, clips):
    for i, name in enumerate(["still", "blink", "move_up"]):
        write_video(tmp_path / name / f"clip{i}.mp4", clips[i][0])
    (tmp_path / "notes.txt").write_text("not a video")
    own = VideoFolder(tmp_path, num_frames=8, size=(32, 32))
    assert own.classes == ("blink", "move_up", "still") and [own.label(i) for i in range(3)] == [0, 1, 2]
    zoo = VideoFolder(tmp_path, num_frames=8, size=(32, 32), classes=CLASSES)
    assert [CLASSES[zoo.label(i)] for i in range(3)] == ["blink", "move_up", "still"]
    (x, y), = zoo.batches(3, indices=[2])
    assert x.shape == (1, 3, 8, 32, 32) and y.tolist() == [CLASSES.index("still")]
    truth = np.eye(10, dtype=np.float32)[[zoo.label(i) for i in range(3)]]
    assert zoo.top1(lambda batch: truth[: len(batch)], batch_size=3) == 1.0
    write_video(tmp_path / "stil" / "x.mp4", clips[3][0])
    with pytest.raises(BadInput, match="class folders stil that are not classes of the model"):
        VideoFolder(tmp_path, num_frames=8, size=(32, 32), classes=CLASSES)


def test_unreadable_videos_are_named(tmp_path, clips):
    data = write_video(tmp_path / "good.mp4", clips[0][0]).read_bytes()
    for name, content in (("cut.mp4", data[:-len(data) // 3]), ("half.mp4", data[: len(data) // 2]), ("text.avi", b"hello")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(BadInput, match=rf"video file '.*{name}'.*") as err:
            read_clip(tmp_path / name, 8, (32, 32))
        assert "\n" not in str(err.value)
    with pytest.raises(BadInput, match="'.*good.mp4' does not exist or is not a folder"):
        VideoFolder(tmp_path / "good.mp4", 8, (32, 32))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="has no video files"):
        VideoFolder(tmp_path / "empty", 8, (32, 32))


def test_calibration_reads_a_folder_of_videos(tmp_path, clips):
    for i in range(3):
        write_video(tmp_path / f"v{i}.mp4", clips[i][0])
    video = InputSpec((1, 3, 8, 32, 32), layout="B,C,T,H,W")
    calib = calibration_inputs(video, 2, tmp_path)
    assert len(calib) == 2 and calib.inputs[1][0].shape == (1, 3, 8, 32, 32) and "2 of 3 videos" in calib.source
    assert np.array_equal(calib.inputs[1][0][0], read_clip(tmp_path / "v1.mp4", 8, (32, 32)))
    assert len(calibration_inputs(InputSpec((2, 3, 4, 16, 16), layout="B,C,T,H,W"), 5, tmp_path)) == 1
    with pytest.raises(BadInput, match="videos calibrate B,C,T,H,W models only"):
        calibration_inputs(InputSpec((1, 16, 16), layout="B,L,C"), 2, tmp_path)
