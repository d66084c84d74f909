"""A model's preprocessing: frame sampling, resize, crop and normalisation of a video, one function for eval,
calibration and predict; declared by the zoo from the releases' configs and recorded in the report."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from edgest.data.calibration import calibration_inputs
from edgest.data.preprocessing import default, fit, for_spec, frame_indices, normalise, read_clip
from edgest.data.synthetic import MEAN, STD
from edgest.errors import BadInput
from edgest.plan import plan
from edgest.plugins import get_registry
from edgest.records import InputSpec, ModelSpec, Preprocessing, Report

av = pytest.importorskip("av", reason="PyAV (the edgest[video] extra) is not installed")


def _ramp_video(path: Path, frames: int = 20, height: int = 48, width: int = 80) -> Path:
    """A video whose frame t is flat grey level 10 * t, with a bright bar on the left to show the crop."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8, options={"qscale": "1"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            img = np.full((height, width, 3), 10 * t, np.uint8)
            img[:, :8] = 250
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_uniform_and_dense_sampling():
    uniform = Preprocessing(frames=4, crop=(8, 8))
    assert frame_indices(10, uniform).tolist() == [0, 3, 6, 9]
    dense = Preprocessing(frames=16, crop=(8, 8), sampling="dense", stride=4)  # SqueezeTime: 16 frames, 4 apart
    assert frame_indices(100, dense).tolist() == list(range(18, 82, 4))  # the 64-frame window centred: (100 - 64 + 1) // 2
    assert frame_indices(64, dense).tolist() == list(range(0, 64, 4))
    assert frame_indices(10, dense).tolist() == [i % 10 for i in range(0, 64, 4)]  # a short video loops


def test_normalise_in_both_pixel_conventions():
    frames = np.array([[[[0, 128, 255]]]], np.uint8)  # T=1, H=1, W=1, RGB
    mm = Preprocessing(frames=1, crop=(1, 1), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), pixel_range="0-255")
    assert normalise(frames, mm).ravel() == pytest.approx([-123.675 / 58.395, (128 - 116.28) / 57.12, (255 - 103.53) / 57.375])
    assert normalise(frames, default(1, (1, 1))).ravel() == pytest.approx([(0 - MEAN) / STD, (128 / 255 - MEAN) / STD, (1 - MEAN) / STD])


def test_dense_clip_is_those_frames_of_the_full_clip_resized_and_cropped(tmp_path):
    video = _ramp_video(tmp_path / "ramp.mp4")
    every = Preprocessing(frames=20, crop=(32, 32), resize=40, pixel_range="0-255", mean=(0, 0, 0), std=(1, 1, 1))
    full = read_clip(video, every)
    dense = read_clip(video, replace(every, frames=4, sampling="dense", stride=3))
    assert dense.shape == (3, 4, 32, 32)
    assert np.array_equal(dense, full[:, frame_indices(20, replace(every, frames=4, sampling="dense", stride=3))])
    # short side 48 -> 40 (80 -> 67 wide), centre crop 32x32: the bright bar on the left edge is cut away
    assert full.max() < 220 and abs(full[:, 10].mean() - 100) < 8


@pytest.mark.skipif(not hasattr(av.VideoFrame, "rotation"), reason="PyAV < 14 reads no display matrix")
@pytest.mark.parametrize(("degrees", "bright"), [(0, "left"), (90, "bottom"), (-90, "top"), (180, "right")])
def test_a_phone_clips_rotation_is_applied_before_the_crop(tmp_path, degrees, bright):
    """Phones store portrait clips as landscape frames plus a display rotation (counter-clockwise here, as PyAV
    writes and reads it); read without it, a portrait clip lay on its side."""
    with av.open(str(tmp_path / "phone.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=8, options={"qscale": "1"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(degrees)
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, :28] = 250  # the stored frame's left side
        for _ in range(4):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    prep = Preprocessing(frames=2, crop=(48, 36), pixel_range="0-255", mean=(0, 0, 0), std=(1, 1, 1))
    clip = read_clip(tmp_path / "phone.mp4", prep)[0, 0]  # red, first frame: 48 high, 36 wide, as it is shown
    edges = {"top": clip[:6].mean(), "bottom": clip[-6:].mean(), "left": clip[:, :6].mean(), "right": clip[:, -6:].mean()}
    assert max(edges, key=edges.get) == bright and edges[bright] > 200, edges
    assert min(edges.values()) < 30, edges


def test_fit_keeps_the_resize_ratio_and_the_plan_records_it():
    official = get_registry().model("squeezetime").spec.preprocessing
    assert (official.sampling, official.stride, official.resize, official.crop, official.pixel_range) == \
        ("dense", 4, 256, (224, 224), "0-255")
    assert fit(official, 8, (160, 160)) == replace(official, frames=8, crop=(160, 160), resize=183)
    p = plan("squeezetime", "eager", input_shape="1x3x8x160x160", out_dir="unused")
    assert p.spec.preprocessing == replace(official, frames=8, crop=(160, 160), resize=183)
    tiny = get_registry().model("squeezetime_tiny").spec
    assert tiny.preprocessing == default(8, (64, 64))  # what edgest train teaches
    assert for_spec(get_registry().model("lmuformer").spec) is None  # sequences: no clips


def test_calibration_reads_videos_with_the_model_preprocessing(tmp_path):
    folder = tmp_path / "calib"
    folder.mkdir()
    video = _ramp_video(folder / "a.mp4")
    prep = Preprocessing(frames=4, crop=(16, 16), sampling="dense", stride=2, resize=20, mean=(100, 100, 100),
                         std=(50, 50, 50), pixel_range="0-255")
    spec = ModelSpec("m", "user", InputSpec((1, 3, 4, 16, 16), layout="B,C,T,H,W"), 10, preprocessing=prep)
    calib = calibration_inputs(spec, 1, folder)
    assert np.array_equal(calib.inputs[0][0][0], read_clip(video, prep)) and "dense stride 2" in calib.source


def test_report_round_trip_and_old_reports():
    prep = get_registry().model("squeezetime").spec.preprocessing
    spec = ModelSpec("m", "squeezetime", InputSpec((1, 3, 16, 224, 224), layout="B,C,T,H,W"), 400, preprocessing=prep)
    data = json.loads(json.dumps(Report("passed", spec, "eager").to_dict()))
    assert Report.from_dict(data).model.preprocessing == prep
    data["model"]["preprocessing"]["added_later"] = 1  # a newer writer's field is ignored
    assert Report.from_dict(data).model.preprocessing == prep
    del data["model"]["preprocessing"]  # a 1.0 report
    assert Report.from_dict(data).model.preprocessing is None
    assert asdict(prep)["mean"] == (123.675, 116.28, 103.53)


def test_unusable_preprocessing_is_named(tmp_path):
    video = _ramp_video(tmp_path / "v.mp4")
    with pytest.raises(BadInput, match="resize 8 is smaller than the crop"):
        read_clip(video, Preprocessing(frames=2, crop=(16, 16), resize=8))
