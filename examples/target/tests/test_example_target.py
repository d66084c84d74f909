"""The example target passes edgest's target conformance kit, plus what is specific to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgest
from edgest.testing import TargetConformance, tiny_convnet
from edgest_example_target.target import Pt2Target


class TestExampleTarget(TargetConformance):
    target_name = "example-pt2"
    plugin = "edgest_example_target.plugin"  # load it directly: no install needed


def test_decompose_lowers_to_core_aten(tmp_path: Path) -> None:
    import torch

    example = (torch.randn(1, 3, 16, 16),)
    program = torch.export.export(tiny_convnet(), example, strict=False)
    plain = Pt2Target().lower(program, example, tmp_path)
    assert "aten.conv2d.default" in plain.details["ops"]
    (tmp_path / "core").mkdir()
    core = Pt2Target(decompose=True).lower(program, example, tmp_path / "core")
    assert "aten.conv2d.default" not in core.details["ops"] and "aten.convolution.default" in core.details["ops"]
    outs = [Pt2Target().load(p.path, threads=1).run([example[0].numpy()])[0] for p in (plain, core)]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)


def test_options_are_typed_by_the_table() -> None:
    with pytest.raises(edgest.BadInput, match="example-pt2 option decompose must be bool, not 'yes'"):
        Pt2Target(decompose="yes")
    with pytest.raises(edgest.BadInput, match="unknown example-pt2 option 'fuse'; available: decompose"):
        Pt2Target(fuse=True)
