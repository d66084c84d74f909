"""The provenance record: its report.md clause, and reports that carry it (or not) reading back."""

from __future__ import annotations

import pytest

from edgest.records import InputSpec, ModelSpec, Report
from edgest.report.weights import weights_line
from edgest.weights.provenance import WeightsRecord, summary


def _record() -> dict:
    return WeightsRecord(
        path="vit.safetensors", sha256="ab" * 32, format="timm-vit", container="safetensors", source="top level",
        loaded=("spatial.cls_token", "spatial.pos_embed"), renamed={"cls_token": "spatial.cls_token", "pos_embed": "spatial.pos_embed"},
        resized={"spatial.pos_embed": "1x17x64 -> 1x65x64"}, skipped={"head.weight": "image classifier"},
        left_at_init={"head.weight": "video classifier", "head.bias": "video classifier"},
        dropped_objects={"numpy.dtype": 2}, notes=("patch embedding inflated (central frame)",),
    ).to_dict()


def test_record_counts_and_report_line() -> None:
    rec = _record()
    assert rec["kind"] == "file" and rec["counts"] == {"loaded": 2, "renamed": 2, "resized": 1, "skipped": 1,
                                                      "left_at_init": 2, "dropped_objects": 2}
    assert summary(rec) == ("format timm-vit (top level): 2 loaded, 2 renamed, 1 resized, 1 skipped, 2 left at init, "
                            "2 pickled non-tensor objects dropped; patch embedding inflated (central frame)")
    assert weights_line(rec) == f"loaded from `vit.safetensors` (sha256 `{'ab' * 8}…`); {summary(rec)}"
    assert summary({"kind": "random-init"}) == "" and summary(None) == ""


def _report(weights: object) -> dict:
    spec = ModelSpec("m", "user", InputSpec((1, 4)), 0)
    data = Report(status="passed", model=spec, target="eager").to_dict()
    if weights == "absent":
        del data["weights"]
    else:
        data["weights"] = weights
    return data


@pytest.mark.parametrize("weights, expected", [("absent", {}), (None, {}), ({"kind": "random-init"}, {"kind": "random-init"})])
def test_reports_read_back_with_or_without_the_record(weights: object, expected: dict) -> None:
    assert Report.from_dict(_report(weights)).weights == expected
    assert Report.from_dict(_report(_record())).weights == _record()


def test_a_report_whose_record_is_not_an_object_is_refused() -> None:
    with pytest.raises(TypeError, match="weights is list, not an object"):
        Report.from_dict(_report(["w.pt"]))
