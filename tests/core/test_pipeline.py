"""Pipeline pieces: shapes, capture errors, staged output folders, records."""

from __future__ import annotations

import json

import pytest
import torch

from edgest.capture import capture
from edgest.errors import BadInput, Unsupported
from edgest.outdir import staged_output
from edgest.pipeline import parse_shape
from edgest.records import Artifact, CheckResult, InputSpec, ModelSpec, PassRecord, Report


def test_parse_shape():
    assert parse_shape("1x3x16x224x224") == (1, 3, 16, 224, 224)
    for bad in ("1x3xfoo", "", "1x0x2", "1x-3"):
        with pytest.raises(BadInput):
            parse_shape(bad)


class DataDependent(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


def test_capture_names_data_dependent_control_flow():
    with pytest.raises(Unsupported, match="data-dependent control flow"):
        capture(DataDependent(), (torch.randn(2, 3),))


def test_staged_output_appears_only_when_complete(tmp_path):
    out = tmp_path / "a" / "run"
    with pytest.raises(KeyboardInterrupt):
        with staged_output(out) as stage:
            (stage / "half.bin").write_bytes(b"x")
            raise KeyboardInterrupt
    assert not (tmp_path / "a").exists()
    with staged_output(out) as stage:
        (stage / "done.bin").write_bytes(b"x")
    assert (out / "done.bin").exists() and [p.name for p in out.parent.iterdir()] == ["run"]


def test_staged_output_refuses_existing_folder_unless_forced(tmp_path):
    out = tmp_path / "run"
    with staged_output(out) as stage:
        (stage / "old").write_text("x")
    with pytest.raises(BadInput, match="already exists and is not empty; pass --force"):
        with staged_output(out):
            pass
    with staged_output(out, force=True) as stage:
        (stage / "new").write_text("y")
    assert sorted(p.name for p in out.iterdir()) == [".edgest.json", "new"]


def test_staged_output_never_replaces_a_folder_edgest_did_not_make(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old").write_text("x")
    with pytest.raises(BadInput, match="already exists and is not empty, and edgest did not create it") as info:
        with staged_output(out, force=True):
            pass
    assert "--force" not in str(info.value) and sorted(p.name for p in out.iterdir()) == ["old"]


def test_report_round_trips_through_json():
    spec = ModelSpec("m", "f", InputSpec((1, 3), layout="B,C"), 3, {"k": 1}, "paper")
    report = Report(
        status="passed", model=spec, target="t",
        artifact=Artifact("m", "t", "model.onnx", "onnx", 10, "ab", ("p",), {"torch": "2"}, {"n": 1}, 1.5),
        passes=(PassRecord("p", {"a": 1}, True, 0.1, "did", {"sqnr_db": 50.0}),),
        checks=(CheckResult("accuracy", "passed", {"sqnr_db": 80.0}, {"min_sqnr_db": 40.0}),),
        created="now",
    )
    assert Report.from_dict(json.loads(json.dumps(report.to_dict()))) == report
