"""Per-layer int8 sensitivity: a layer made hard to quantise comes out worst, and keeping it float helps."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import edgest
from edgest.errors import BadInput
from edgest.passes.quantize import QuantizePass
from edgest.plugins import new_plugin_manager
from edgest.quantization import quantizable_layers, sensitivity

SHAPE = (1, 32)


class OutlierNet(torch.nn.Module):
    """A small MLP whose ``fc2`` has huge weights on an input feature that is always exactly zero.

    Per-channel int8 then spends every output channel's range on the outlier and rounds the
    weights that matter to zero: fc2 quantised is almost only its bias.
    """

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = torch.nn.Linear(32, 64)
        self.fc2 = torch.nn.Linear(64, 64)
        self.fc3 = torch.nn.Linear(64, 64)
        self.head = torch.nn.Linear(64, 10)
        with torch.no_grad():
            self.fc1.weight[0] = 0.0
            self.fc1.bias[0] = 0.0  # feature 0 is exactly zero
            self.fc2.weight[:, 0] = 1000.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.fc1(x))
        x = torch.relu(self.fc2(x))
        x = torch.relu(self.fc3(x))
        return self.head(x)


def test_sensitivity_ranks_layers_by_the_noise_they_add():
    ref = [np.ones(4, np.float32)]
    noise = {"a": 0.01, "b": 1.0}  # output noise each layer adds when quantised

    def run(keep):
        return [ref[0] + np.sqrt(sum(v for k, v in noise.items() if k not in keep) / 4)]

    def run_with_unknown(keep):
        if "c" in keep:
            raise BadInput("--quant-skip 'c' matches no node")
        return run(keep)

    out = sensitivity(run_with_unknown, ref, ["a", "b", "c"])
    assert [r["layer"] for r in out["layers"]] == ["b", "a"]
    b, a = out["layers"]
    assert b["sqnr_db"] == pytest.approx(10 * np.log10(4 / 1.0), abs=0.01)
    assert a["sqnr_db"] == pytest.approx(10 * np.log10(4 / 0.01), abs=0.01)
    assert b["sqnr_if_float_db"] == a["sqnr_db"] and b["gain_db"] > 10 > a["gain_db"] > 0
    assert out["not_measured"][0]["layer"] == "c" and "matches no node" in out["not_measured"][0]["reason"]
    program = torch.export.export(OutlierNet().eval(), (torch.randn(SHAPE),))
    assert quantizable_layers(program) == ("fc1", "fc2", "fc3", "head")
    assert quantizable_layers(program, ["fc1", "head"]) == ("fc2", "fc3")
    with pytest.raises(BadInput, match="pass 'quantize' option sensitivity must be bool"):
        QuantizePass(sensitivity="yes")


def test_cli_flag_reaches_the_quantize_pass():
    from edgest.cli import _with_quant_options

    assert _with_quant_options([], "int8", None, None, (), True) == [("quantize", {"scheme": "int8", "sensitivity": True})]
    with pytest.raises(BadInput, match="--quant-sensitivity apply to int8; add --precision int8"):
        _with_quant_options([], "fp32", None, None, (), True)


def _registry(target: str):
    plugin = importlib.import_module(f"edgest_{target}.plugin")
    pm = new_plugin_manager(entry_points=False)
    pm.add(plugin, target)
    return pm.registry


TARGETS = ["onnx", pytest.param("executorch", marks=[pytest.mark.slow, pytest.mark.skipif(  # slow: suite time, ONNX by default
    importlib.util.find_spec("executorch") is None, reason="executorch not installed")])]


@pytest.mark.parametrize("target", TARGETS)
def test_outlier_layer_is_worst_and_skipping_it_helps(target, tmp_path):
    reg = _registry(target)
    kw = {"input_shape": SHAPE, "precision": "int8", "samples": 8, "latency": None, "registry": reg}
    report = edgest.compile(OutlierNet(), target, out_dir=tmp_path / "all", **kw,
                            passes=[("quantize", {"calibration_size": 4, "sensitivity": True})])
    (rec,) = report.passes
    sens = rec.details["sensitivity"]
    assert report.artifact.details["quantization"]["sensitivity"] == sens
    worst = sens["layers"][0]
    assert worst["layer"] == "fc2", sens["layers"]
    assert sens["sqnr_all_db"] < 10 and worst["sqnr_if_float_db"] > sens["sqnr_all_db"] + 10
    assert sorted(r["layer"] for r in sens["layers"]) == ["fc1", "fc2", "fc3", "head"] and not sens["not_measured"]
    md = (tmp_path / "all" / "report.md").read_text()
    assert "## Quantisation sensitivity (worst layers first)" in md and "| 1 | `fc2` |" in md
    if target != "onnx":  # the row above is already the quantizer run with skip=fc2; one end-to-end compile is enough
        return
    kept = edgest.compile(OutlierNet(), target, out_dir=tmp_path / "kept", **kw,
                          passes=[("quantize", {"calibration_size": 4, "skip": ["fc2"]})])
    before, after = report.check("accuracy").metrics["sqnr_db"], kept.check("accuracy").metrics["sqnr_db"]
    assert after > before + 5, (before, after)  # on the check's own inputs, not the calibration ones
    assert "sensitivity" not in kept.passes[0].details
