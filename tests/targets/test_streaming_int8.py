"""int8 ``--streaming``: a step program's recurrence stays float (edgest.quantize.state_loop), and trained
lmuformer_tiny streams within the int8 limits on every target with an int8 quantizer (issue 20).

The fast tests check the rule on a toy step graph and the OpenVINO quantizer's graph (random weights). The slow
one trains lmuformer_tiny with its default recipe (~10 min on 2 cores, kept in pytest's cache like
tests/models/test_trained_int8.py does) and compiles it int8 ``--streaming`` on each installed target.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import edgest
from edgest.quantize import state_loop

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
#: target -> the module its int8 needs, and how to install it
INT8 = {"onnx": ("onnxruntime", "targets/onnx"), "executorch": ("executorch", "targets/executorch"),
        "openvino": ("nncf", "plugins/edgest-openvino"), "litert": ("litert_torch", "targets/litert"),
        "coreml": ("coremltools", "targets/coreml")}


class _Step(torch.nn.Module):
    """A toy step module: a memory m' = m A + relu(W x), a running sum of the logits, and their mean."""

    def __init__(self) -> None:
        super().__init__()
        self.w, self.head, self.a = torch.nn.Linear(4, 4), torch.nn.Linear(8, 3), torch.nn.Parameter(torch.eye(4))

    def forward(self, x, m, total, count):
        m = m @ self.a + torch.relu(self.w(x))
        logits = self.head(torch.cat([m, x], 1))
        total, count = total + logits, count + 1.0
        return total / count, m, total, count


def _graph(states: int):
    example = (torch.randn(1, 4), torch.zeros(1, 4), torch.zeros(1, 3), torch.zeros(1))
    module = _Step() if states else torch.nn.Linear(4, 3)
    return torch.export.export(module, example if states else example[:1], strict=False).module().graph


def test_the_state_loop_is_the_recurrence_and_its_readers():
    loop = state_loop(_graph(3), 3)
    ops = {name.rstrip("_0123456789") for name in loop}
    assert {"matmul", "add", "cat", "div"} <= ops  # the memory loop, the sums' adds, what reads them
    assert not any(n.startswith(("linear", "relu")) for n in loop)  # the layers feeding the loop stay quantised


def test_a_whole_input_program_has_no_state_loop():
    assert state_loop(_graph(0), 0) == [] and state_loop(_graph(0), 2) == []


def _needs(target: str) -> None:
    module, where = INT8[target]
    if importlib.util.find_spec(module) is None or importlib.util.find_spec(f"edgest_{target}") is None:
        pytest.skip(f"{target}: {module} or edgest-{target} not installed (pip install -e {where})")


def test_openvino_keeps_the_state_loop_float(tmp_path):
    """Random weights: the quantize pass reports the loop it kept float, and no state output is dequantised."""
    _needs("openvino")
    pytest.importorskip("edgest_models.lmuformer", reason="edgest-models not installed (pip install -e models)")
    report = edgest.compile("lmuformer_tiny", "openvino", out_dir=tmp_path / "run", streaming=True, precision="int8",
                            latency=None, samples=4)
    quant = report.artifact.details["quantization"]
    assert quant["state_inputs"] == 3
    assert {"add", "add_3", "add_4", "div"} <= set(quant["state_loop_float"])
    assert "min-max" in quant["activations"]


@pytest.fixture(scope="session")
def trained_lmuformer(trained_weights) -> Path:
    """lmuformer_tiny trained with its default recipe, cached (edgest.testing.trained)."""
    return trained_weights("lmuformer_tiny")


@pytest.mark.slow
@pytest.mark.parametrize("target", list(INT8))
def test_trained_lmuformer_streams_int8(target, trained_lmuformer, tmp_path):
    _needs(target)
    report = edgest.compile("lmuformer_tiny", target, out_dir=tmp_path / "run", streaming=True, precision="int8",
                            weights=trained_lmuformer, latency=FAST)
    check = report.check("streaming")
    m = check.metrics
    # Core ML on Linux: checked through the MIL reference interpreter, latency not run, so the run is "incomplete"
    assert check.status == report.check("accuracy").status == "passed", (report.error, check.reason)
    assert m["sqnr_db"] >= 15 and m["top1_agreement"] >= 0.95
