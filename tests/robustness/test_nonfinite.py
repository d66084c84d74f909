"""NaN and Inf are found where they enter and named: weights, calibration files, eager outputs, artifact outputs.

Before: NaN weights ran all the way to a 47-line traceback from the JSON writer, and an artifact
returning NaN *passed* the accuracy check (``min(200, nan)`` is 200 dB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgest.checks import accuracy
from edgest.data.calibration import calibration_inputs
from edgest.errors import BadInput
from edgest.model import load_weights
from edgest.records import InputSpec


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.BatchNorm1d(3))


@pytest.mark.parametrize("poison, kinds", [(float("nan"), "NaN"), (float("inf"), "Inf"), (None, "NaN/Inf")])
def test_weights_with_non_finite_values_are_named(tmp_path: Path, poison: float | None, kinds: str) -> None:
    state = _net().state_dict()
    if poison is None:
        state["0.bias"][1], state["2.weight"][0, 0] = float("nan"), float("-inf")
    else:
        state["0.bias"][1] = state["2.weight"][0, 0] = poison
    torch.save(state, tmp_path / "w.pt")
    model = _net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(BadInput) as err:
        load_weights(model, tmp_path / "w.pt")
    assert str(err.value) == f"weights '{tmp_path / 'w.pt'}' hold {kinds} in 2 tensors, first 0.bias; retrain or re-export them"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing was loaded


def test_finite_weights_still_load(tmp_path: Path) -> None:
    src = _net()
    with torch.no_grad():
        src[0].weight.add_(1.0)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    model = _net()
    load_weights(model, tmp_path / "w.pt")
    assert torch.equal(model[0].weight, src[0].weight)


def test_weights_with_non_string_keys_are_refused(tmp_path: Path) -> None:
    torch.save({1: torch.ones(2), "x": torch.ones(1)}, tmp_path / "w.pt")
    with pytest.raises(BadInput, match="is not a state_dict of tensors"):
        load_weights(_net(), tmp_path / "w.pt")


def test_calibration_file_with_nan_is_named(tmp_path: Path) -> None:
    spec = InputSpec((1, 4))
    np.save(tmp_path / "a.npy", np.ones((1, 4), np.float32))
    bad = np.ones((1, 4), np.float32)
    bad[0, 2] = np.nan
    np.save(tmp_path / "b.npy", bad)
    with pytest.raises(BadInput) as err:
        calibration_inputs(spec, 8, tmp_path)
    assert f"calibration file '{tmp_path / 'b.npy'}' holds NaN in 1 value, first at index (0, 2); fix or remove" in str(err.value)


def test_calibration_value_past_float32_range_is_inf(tmp_path: Path) -> None:
    big = np.ones((4,), np.float64)
    big[3] = 1e300  # finite in float64, Inf once the model's float32 sees it
    np.save(tmp_path / "a.npy", big)
    with pytest.raises(BadInput, match=r"holds Inf in 1 value, first at index \(0, 3\)"):  # with the batch dim
        calibration_inputs(InputSpec((1, 4)), 8, tmp_path)
    np.save(tmp_path / "a.npy", np.ones((4,), np.float64))
    assert len(calibration_inputs(InputSpec((1, 4)), 8, tmp_path)) == 1


def test_check_finite_names_the_samples() -> None:
    good = [np.ones((1, 3), np.float32) for _ in range(4)]
    accuracy.check_finite(good, "eager outputs")
    bad = [g.copy() for g in good]
    bad[2][0, 1] = np.nan
    bad[3][0, 0] = np.inf
    with pytest.raises(BadInput) as err:
        accuracy.check_finite(bad, "eager outputs of model 'net'")
    assert str(err.value).startswith("eager outputs of model 'net' hold NaN/Inf in 2 of 4 samples, first sample 2; check the weights")
    with pytest.raises(BadInput, match="in 1 of 2 samples, first sample 1; retrain"):
        accuracy.check_finite([[good[0], good[1]], [good[0], bad[2]]], "outputs", fix="retrain")


def test_non_finite_artifact_outputs_fail_the_check() -> None:
    ref = [np.array([[1.0, 2.0, 3.0]], np.float32) for _ in range(4)]
    act = [r.copy() for r in ref]
    act[0][0, 2] = np.nan
    m = accuracy.compare(ref, act)
    assert m["nonfinite"] == 1 and m["sqnr_db"] == -accuracy.SQNR_CAP_DB and m["cosine"] == 0.0
    assert m["top1_agreement"] == 0.75  # the NaN row disagrees
    assert all(np.isfinite(v) for v in m.values())  # what the report writes is JSON-safe
    broken = accuracy.within(m, accuracy.LIMITS["fp32"])
    assert broken[0] == "the artifact's outputs hold 1 NaN/Inf values"
    with pytest.raises(ValueError, match="reference outputs hold 1 NaN/Inf"):
        accuracy.compare(act, ref)
    assert "nonfinite" not in accuracy.compare(ref, ref)
