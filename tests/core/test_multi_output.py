"""A model with several outputs is judged on every one of them, not on the first alone."""

from __future__ import annotations

import pytest
import torch

import edgest
from edgest.errors import BadInput


class Two(torch.nn.Module):
    def __init__(self, break_aux: bool = False) -> None:
        super().__init__()
        self.a, self.b, self.break_aux = torch.nn.Linear(4, 3), torch.nn.Linear(4, 2), break_aux

    def forward(self, x):
        return {"logits": self.a(x), "aux": self.b(x)}


def test_every_output_is_compared_and_reported(tmp_path):
    report = edgest.compile(Two(), "eager", input_shape=(1, 4), out_dir=tmp_path / "run", latency=None)
    m = report.check("accuracy").metrics
    assert report.status == "passed" and m["outputs"] == 2
    assert [len(p) > 0 for p in m["per_output"]] == [True, True] and m["sqnr_db"] == min(p["sqnr_db"] for p in m["per_output"])


def test_a_forward_returning_none_is_one_line(tmp_path):
    class Nothing(torch.nn.Module):
        def forward(self, x):
            x = x + 1  # no return

    with pytest.raises(BadInput, match="returns None"):
        edgest.compile(Nothing(), "eager", input_shape=(1, 4), out_dir=tmp_path / "run", latency=None)
    assert not (tmp_path / "run").exists()


def test_a_scalar_output_is_compared_as_the_value_it_is(tmp_path):
    class Total(torch.nn.Module):  # the outside round's 0-d output: was "shape () differs from the reference (1,)"
        def __init__(self) -> None:
            super().__init__()
            self.l = torch.nn.Linear(8, 4)

        def forward(self, x):
            return self.l(x).sum()

    pytest.importorskip("onnxruntime", reason="ONNX Runtime runs the artifact")
    report = edgest.compile(Total(), "onnx", input_shape=(1, 8), out_dir=tmp_path / "run", latency=None)
    assert report.status == "passed", report.error
    assert report.check("accuracy").metrics["sqnr_db"] > 100
