"""``x.add(y, alpha=a)`` on every target: core ATen keeps ``alpha``, and TVM's Relax frontend and coreai-torch read
only the two operands (``x + y``). edgest rewrites it as ``x + mul(y, a)`` for them (edgest.graph_fixes)."""

from __future__ import annotations

import pytest
import torch

import edgest
from edgest.plugins import get_registry

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
TARGETS = ["onnx", "executorch", "tvm", "openvino", "litert", "coreml", "coreai", "cuda"]


class Decay(torch.nn.Module):
    """A leaky integrator's update written as LIF neurons write it (``g.add(w, alpha=1 - 1/tau)``), a sub, and an
    rsub (``y - alpha * x``: TVM dropped that alpha too, and litert-torch refused it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rsub(x.add(torch.relu(x), alpha=0.5).sub(x * x, alpha=2.0), torch.sigmoid(x), alpha=3.0)


def _usable(name: str) -> None:
    registry = get_registry()
    if name not in registry.targets:
        pytest.skip(f"target '{name}' is not installed (pip install -e targets/{name})")
    reason = registry.target(name).unavailable_reason()
    if reason:
        pytest.skip(f"target '{name}' unavailable here: {reason}")


def _accuracy(target: str, tmp_path) -> edgest.CheckResult:
    report = edgest.compile(Decay(), target, input_shape=(1, 4, 8), precision="fp32", out_dir=tmp_path / "run",
                            latency=None, samples=4)
    return report.check("accuracy")


@pytest.mark.parametrize("target", TARGETS)
def test_add_and_sub_with_alpha_are_exact_on_every_target(target, tmp_path):
    _usable(target)
    acc = _accuracy(target, tmp_path)
    assert acc.status == "passed" and acc.metrics["sqnr_db"] > 100, (acc.reason, acc.metrics)


def test_tvm_without_the_rewrite_computes_x_plus_y(monkeypatch, tmp_path):
    """The fault the rewrite is for: with it off, TVM's library is wrong (4.7 dB on the flip/roll variant)."""
    _usable("tvm")
    from edgest_tvm import target as tvm_target

    monkeypatch.setattr(tvm_target, "without_alpha", lambda program: (program, 0))
    acc = _accuracy("tvm", tmp_path)
    assert acc.status == "failed" and acc.metrics["sqnr_db"] < 20, acc.metrics


def test_the_rewrite_copies_only_a_program_that_needs_it():
    from edgest.graph_fixes import scaled_operands, without_alpha

    program = torch.export.export(Decay(), (torch.randn(1, 4, 8),), strict=False)
    fixed, count = without_alpha(program)
    assert count == 3 and scaled_operands(program) == 3 and scaled_operands(fixed) == 0  # the original is left as it is
    x = torch.randn(1, 4, 8)
    assert torch.allclose(fixed.module()(x), Decay()(x))
    plain = torch.export.export(torch.nn.ReLU(), (x,), strict=False)
    assert without_alpha(plain) == (plain, 0)
