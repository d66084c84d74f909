"""``Target.coverage`` of each first-party target agrees with what its compile does.

For each installed target: a tiny model with one op the target cannot run natively; the
coverage (``edgest check``) must predict that op's verdict, and lowering the same program must
agree (the op left out of the XNNPACK delegate; an unsupported op refused naming it).
"""

from __future__ import annotations

import pytest
import torch

from edgest.errors import Unsupported
from edgest.plugins import get_registry
from edgest.preflight import check

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


class ConvThen(torch.nn.Module):
    """A conv and a relu (every target runs them), then one op chosen by the test."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        if self.op == "cummax":
            return torch.cummax(y, 2)[0]
        return torch.cumsum(y, 2)


SHAPE = (1, 3, 8, 8)


def _target(name: str):
    """The registered target ``name`` at its defaults; skipped (naming why) when its toolchain is missing."""
    registry = get_registry()
    if name not in registry.targets:
        pytest.skip(f"target '{name}' is not installed (pip install -e targets/{name})")
    cls = registry.target(name)
    reason = cls.unavailable_reason()
    if reason:
        pytest.skip(f"target '{name}' unavailable here: {reason}")
    return cls()


def _predict_and_lower(name: str, op: str, tmp_path):
    """(coverage from ``edgest check``, the lowering's details or the error it raised)."""
    target = _target(name)
    model = ConvThen(op).eval()
    result = check(model, [name], input_shape=SHAPE)
    coverage = result.coverage[name]
    assert coverage.status == "known", coverage.note
    example = (torch.randn(*SHAPE),)
    program = torch.export.export(model, example, strict=False)
    try:
        return coverage, target.lower(program, example, tmp_path).details
    except Exception as exc:  # noqa: BLE001 - some toolchains refuse with their own error type (see below)
        return coverage, exc


@pytest.mark.parametrize("name", ["onnx", "tvm", "coreml", "openvino", "litert", "coreai"])
def test_an_op_the_target_lacks_is_predicted_unsupported_and_the_compile_refuses_it(name, tmp_path):
    coverage, lowered = _predict_and_lower(name, "cummax", tmp_path)
    assert coverage.verdicts("aten.cummax") == {"unsupported": 1}
    assert coverage.verdicts("aten.conv2d") == {"native": 1}
    assert coverage.verdicts("aten.relu") == {"native": 1}
    assert isinstance(lowered, Exception), f"{name} lowered cummax although coverage said it cannot"
    assert "cummax" in str(lowered)
    if name != "openvino":  # OpenVINO's lower lets the frontend's OpConversionFailure through (it names the op)
        assert isinstance(lowered, Unsupported)


def test_executorch_predicts_which_ops_stay_out_of_the_xnnpack_delegate(tmp_path):
    coverage, details = _predict_and_lower("executorch", "cumsum", tmp_path)
    assert coverage.verdicts("aten.conv2d") == {"delegated": 1}
    assert coverage.verdicts("aten.relu") == {"delegated": 1}
    assert coverage.verdicts("aten.cumsum") == {"fallback": 1}
    assert not isinstance(details, Exception), details
    # the lowered program agrees: cumsum on portable kernels, the rest inside the delegate
    assert set(details["non_delegated_ops"]) == {"aten.cumsum"}
    assert details["delegated_nodes"] >= 2


def test_executorch_predicts_an_op_with_no_kernel_outside_core_aten_as_unsupported(tmp_path):
    coverage, lowered = _predict_and_lower("executorch", "cummax", tmp_path)
    assert coverage.verdicts("aten.cummax") == {"unsupported": 1}
    assert coverage.verdicts("aten.conv2d") == {"delegated": 1}
    # the lowering agrees: the edge dialect's verifier refuses cummax (its own error type, naming the op)
    assert isinstance(lowered, Exception) and "cummax" in str(lowered)

