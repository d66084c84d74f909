"""``edgest debug`` on Core ML (MIL reference, op by op), ExecuTorch and TVM (the program lowered again with the
probes as outputs, :mod:`edgest.debug.relower`): planted faults are named by their PyTorch module."""

from __future__ import annotations

import importlib

import pytest

import edgest
from edgest.debug import debug_run
from edgest.plugins import new_plugin_manager
from edgest.testing import faults

pytestmark = pytest.mark.slow  # a compile and a second lowering per test: tens of seconds on 2 cores

#: target → (its plugin module, its toolchain module)
TARGETS = {"coreml": ("edgest_coreml.plugin", "coremltools"),
           "executorch": ("edgest_executorch.plugin", "executorch"),
           "tvm": ("edgest_tvm.plugin", "tvm")}


def _registry(target: str):
    plugin, toolchain = TARGETS[target]
    pytest.importorskip(toolchain, reason=f"{toolchain} not installed (pip install -e targets/{target})")
    pm = new_plugin_manager(entry_points=False)
    pm.add(importlib.import_module(plugin), target)
    pm.add(faults, "faults")
    return pm.registry


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_scaled_conv_is_named(target, tmp_path) -> None:
    registry = _registry(target)
    precision = "fp16" if target == "coreml" else "fp32"
    edgest.compile("debug_net", target, precision=precision, out_dir=tmp_path / "run", samples=2, latency=None,
                   registry=registry, passes=[("scale-weight", {"module": "blocks.1.conv", "factor": 1.5})])
    result = debug_run(tmp_path / "run", registry=registry)
    assert result.culprit == "blocks.1.conv", result.verdict
    assert result.module("blocks.0").sqnr_db > 50 and not result.not_exposed


def test_int8_executorch_runs_are_refused_with_the_reason(tmp_path) -> None:
    registry = _registry("executorch")
    edgest.compile("debug_net_bad_int8", "executorch", precision="int8", out_dir=tmp_path / "run", samples=1,
                   latency=None, registry=registry, passes=[("quantize", {"calibration_size": 2})])
    with pytest.raises(edgest.Unsupported, match="int8 ExecuTorch runs is not supported: extra outputs break"):
        debug_run(tmp_path / "run", registry=registry)


def test_an_int8_core_ml_conv_folded_with_its_batch_norm_is_compared_as_the_batch_norm(tmp_path) -> None:
    """prepare_pt2e folds the BN into the conv: debug named the conv ('0', -12.8 dB) on a passing run."""
    _registry("coreml")  # skips without coremltools
    faults.debug_folded_batch_norm("coreml", tmp_path / "run")


def test_an_int8_core_ml_layer_that_quantises_badly_is_named(tmp_path) -> None:
    """W8A8 Core ML: coremltools computes a residual add on rescaled operands; the probe takes the dequantize after it."""
    registry = _registry("coreml")
    edgest.compile("debug_net_bad_int8", "coreml", precision="int8", out_dir=tmp_path / "run", samples=2, latency=None,
                   registry=registry, passes=[("quantize", {"calibration_size": 4})])
    result = debug_run(tmp_path / "run", registry=registry)
    assert result.culprit == "blocks.1.conv", result.verdict
    assert result.module("blocks.0").sqnr_db > 25 and result.module("blocks.1.conv").sqnr_db < 5
