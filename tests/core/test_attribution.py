"""Whose loss a failed check shows (edgest.checks.attribution): the target's, or the precision's own."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from edgest.checks import accuracy, attribution
from edgest.records import CheckResult, PassRecord

FP16 = accuracy.LIMITS["fp16"]


class Spiking(nn.Module):
    """Six threshold layers: a spike flips when half-precision rounding moves its input across 0, and a flip
    moves every later layer's inputs (measured here: eager fp16 13.7 dB against fp32)."""

    def __init__(self, width: int = 512, depth: int = 6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList([nn.Linear(64, width)] + [nn.Linear(width, width) for _ in range(depth - 1)])
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = (layer(x) >= 0.0).to(x.dtype)
        return self.head(x)


def _case(model: nn.Module, shape: tuple[int, ...], n: int = 8) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
    inputs = accuracy.seeded_inputs([shape], n, 0)
    with torch.no_grad():
        return inputs, [model(torch.from_numpy(x[0])).numpy() for x in inputs]


def _failed(limits: dict[str, float] = FP16) -> CheckResult:
    return CheckResult("accuracy", "failed", {"sqnr_db": 3.0, "top1_agreement": 0.5}, limits, reason="SQNR 3.0 dB < 25.0 dB")


def test_a_threshold_model_fails_at_fp16_in_eager_pytorch_too() -> None:
    model = Spiking().eval()
    inputs, reference = _case(model, (4, 64))
    check = attribution.half_precision(_failed(), model, inputs, reference, "fp16")
    assert check.metrics["eager_half_sqnr_db"] < FP16["min_sqnr_db"]
    assert check.reason.startswith("SQNR 3.0 dB < 25.0 dB; eager PyTorch at fp16 breaks the limits too (SQNR ")
    assert check.reason.endswith("the model is not fp16-faithful whatever the target; compile with --precision fp32 (precision='fp32')")
    assert check.status == "failed" and model.head.weight.dtype == torch.float32  # a copy was cast, not the model


def test_a_smooth_model_meets_the_limits_in_eager_fp16_so_the_target_is_blamed() -> None:
    model = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 10)).eval()
    inputs, reference = _case(model, (4, 64))
    check = attribution.half_precision(_failed(), model, inputs, reference, "fp16")
    assert check.metrics["eager_half_sqnr_db"] > 40.0 and check.metrics["eager_half_top1_agreement"] == 1.0
    assert "eager PyTorch at fp16 meets them (SQNR" in check.reason
    assert check.reason.endswith("the target loses more than fp16 has to")


def test_bf16_is_measured_in_bfloat16() -> None:
    model = nn.Linear(64, 10).eval()
    inputs, reference = _case(model, (4, 64))
    fp16 = attribution.half_precision(_failed(), model, inputs, reference, "fp16").metrics["eager_half_sqnr_db"]
    bf16 = attribution.half_precision(_failed(), model, inputs, reference, "bf16").metrics["eager_half_sqnr_db"]
    assert fp16 > bf16 + 10.0  # 10 mantissa bits against 7: ~18 dB apart


def test_long_runs_use_a_spread_of_the_inputs_and_say_how_many() -> None:
    model = Spiking().eval()
    inputs, reference = _case(model, (4, 64), n=12)
    few = attribution.half_precision(_failed(), model, inputs, reference, "fp16", max_samples=4)
    assert few.metrics["eager_half_samples"] == 4 and "eager PyTorch at fp16 on 4 of the 12 checked inputs " in few.reason
    slow = attribution.half_precision(_failed(), model, inputs, reference, "fp16", budget_s=0.0)  # one input's worth
    assert slow.metrics["eager_half_samples"] == 1 and "on 1 of the 12 checked inputs" in slow.reason
    every = attribution.half_precision(_failed(), model, inputs, reference, "fp16")
    assert every.metrics["eager_half_samples"] == 12 and "checked inputs" not in every.reason
    assert attribution.spread(12, 4) == [0, 3, 6, 9] and attribution.spread(3, 4) == [0, 1, 2]


@pytest.mark.parametrize("status,precision", [("passed", "fp16"), ("failed", "fp32"), ("failed", "int8")])
def test_only_a_failed_half_precision_check_is_examined(status: str, precision: str) -> None:
    check = CheckResult("accuracy", status, {"sqnr_db": 3.0, "top1_agreement": 0.5}, FP16, reason="r")
    assert attribution.half_precision(check, nn.Linear(2, 2), [[np.zeros((1, 2), np.float32)]], [np.zeros((1, 2))], precision) is check


def test_a_model_that_cannot_run_in_half_keeps_its_verdict_and_says_why() -> None:
    class NoHalf(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.dtype != torch.float32:
                raise RuntimeError("\"addmm\" not implemented for 'Half'")
            return x

    check = attribution.half_precision(_failed(), NoHalf(), [[np.zeros((1, 2), np.float32)]], [np.zeros((1, 2))], "fp16")
    assert check.status == "failed" and "eager_half_sqnr_db" not in check.metrics
    assert check.reason.endswith("eager PyTorch could not run the model at fp16 to compare "
                                 "(\"addmm\" not implemented for 'Half')")


def _quantize(sqnr: float, top1: float) -> PassRecord:
    return PassRecord("quantize", {"scheme": "int8"}, True, 1.0, accuracy_delta={"sqnr_db": sqnr, "top1_agreement": top1, "max_abs": 1.0})


def test_int8_failure_names_the_quantize_pass_when_its_own_delta_breaks_the_limits() -> None:
    int8 = accuracy.LIMITS["int8"]
    ptq = attribution.quantisation(_failed(int8), [_quantize(8.5, 0.88)])
    assert ptq.reason.endswith("; the quantize pass alone loses this much (SQNR 8.5 dB, top-1 agreement 88%, its own "
                               "delta): post-training quantisation's loss, not the runtime's; see --quant-sensitivity "
                               "and --quant-skip (the quantize pass's sensitivity and skip options)")
    later = attribution.quantisation(_failed(int8), [_quantize(30.0, 1.0)])
    assert later.reason.endswith("; the quantize pass alone meets them (SQNR 30.0 dB, top-1 agreement 100%): the loss "
                                 "comes after quantisation")
    assert attribution.quantisation(_failed(int8), []) == _failed(int8)


def test_int8_loss_on_the_labelled_samples_alone_is_not_blamed_on_the_runtime() -> None:
    """The pass's delta runs on the random inputs only. squeezetime_tiny OpenVINO int8 with NNCF's mean ranges read
    33.3 dB there and 14.5 dB on the 256 clips, and was told "the loss comes after quantisation"."""
    int8 = accuracy.LIMITS["int8"]
    parts = {"sqnr_db": 14.6, "top1_agreement": 0.996, "sqnr_db_inputs": 33.3, "top1_agreement_inputs": 1.0,
             "task_sqnr_db": 14.5, "task_samples": 256}
    failed = CheckResult("accuracy", "failed", parts, int8, reason="SQNR 14.6 dB < 15.0 dB")
    clips = attribution.quantisation(failed, [_quantize(33.2, 1.0)])
    assert clips.reason.endswith(
        "; on the random inputs its delta is measured on, the quantize pass alone meets them (SQNR 33.2 dB, top-1 "
        "agreement 100%) and so does the artifact (SQNR 33.3 dB, top-1 agreement 100%): the loss is on the 256 labelled "
        "samples (SQNR 14.5 dB), which the pass's delta does not run; check that the calibration set covers inputs like "
        "them (--calibration, --calibration-size)")
    # the artifact loses on the random inputs too: that is after quantisation, as before
    runtime = dataclasses.replace(failed, metrics={**parts, "sqnr_db_inputs": 9.0})
    assert attribution.quantisation(runtime, [_quantize(33.2, 1.0)]).reason.endswith("the loss comes after quantisation")


class _HalfFloatOps:
    """A target whose ``precision`` option sets what its int8 artifacts' float ops run at (Core ML's, fp16 by default)."""

    option_table: ClassVar[dict] = {"precision": (("fp16", "fp32"), "fp16")}

    def __init__(self, **options: str) -> None:
        self.options = options

    def option(self, key: str) -> str:
        return self.options.get(key, self.option_table[key][1])


def test_an_int8_artifact_with_fp16_float_ops_says_when_eager_fp16_fails_too() -> None:
    int8 = accuracy.LIMITS["int8"]
    spiking = Spiking().eval()
    inputs, reference = _case(spiking, (4, 64))
    check = attribution.float_ops(_failed(int8), _HalfFloatOps(), "int8", spiking, inputs, reference)
    assert check.metrics["eager_half_sqnr_db"] < int8["min_sqnr_db"]
    assert check.reason.endswith("and this int8 artifact runs its float ops at fp16 (the target's precision option); "
                                 "compile with --target-option precision=fp32 (target_options={'precision': 'fp32'})")
    smooth = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 10)).eval()
    inputs, reference = _case(smooth, (4, 64))
    assert attribution.float_ops(_failed(int8), _HalfFloatOps(), "int8", smooth, inputs, reference).reason == "SQNR 3.0 dB < 25.0 dB"
    for target, precision in ((_HalfFloatOps(precision="fp32"), "int8"), (_HalfFloatOps(), "fp32")):
        assert attribution.float_ops(_failed(int8), target, precision, spiking, inputs, reference).reason == "SQNR 3.0 dB < 25.0 dB"

    class NoPrecisionOption(_HalfFloatOps):
        option_table: ClassVar[dict] = {}

    assert attribution.float_ops(_failed(int8), NoPrecisionOption(), "int8", spiking, inputs, reference).reason == "SQNR 3.0 dB < 25.0 dB"
