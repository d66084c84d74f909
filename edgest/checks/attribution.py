"""Whose loss a failed accuracy check shows: the target's, or the precision's own.

A target at fp16 or int8 is judged against eager PyTorch fp32. When it fails, the useful next
question is whether any artifact at that precision could pass. Two measurements answer it:

* half precision (fp16, bf16): a copy of the eager model cast to that dtype, run by PyTorch on the
  same inputs. If it breaks the limits too, the model is not half-precision-faithful (spiking
  neurons flip on a threshold, for one) and no target will do better; if it meets them, the
  target loses more than the arithmetic has to;
* int8: the ``quantize`` pass's own accuracy delta (quantised vs float program, or float vs
  quantised artifact for artifact-stage quantizers), which the pipeline already measures, on the
  check's random inputs only. When the check also ran labelled samples and the artifact meets the
  limits on those random inputs, the loss is the samples', and the sentence says so instead of
  blaming what comes after quantisation.

An int8 artifact whose float ops run at half precision (the target's ``precision`` option: Core ML
computes at fp16 by default) is also run through eager PyTorch at that precision (:func:`float_ops`),
and a failure there is said too. Each sentence is appended to the failed check's reason; the figures
go into its metrics.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.checks import accuracy
from edgest.checks.eager import eager_outputs
from edgest.quantization import PASS_NAME
from edgest.records import CheckResult, PassRecord

if TYPE_CHECKING:
    import torch

    from edgest.target import Target

#: half precisions eager PyTorch can run a model in, by report precision
HALF_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def _cast(module: torch.nn.Module, precision: str) -> tuple[torch.nn.Module, torch.dtype]:
    import torch

    dtype = getattr(torch, HALF_DTYPES[precision])
    return copy.deepcopy(module).to(dtype).eval(), dtype


def eager_in_dtype(module: torch.nn.Module, inputs: Sequence[Sequence[np.ndarray]], precision: str) -> list[np.ndarray]:
    """First outputs of a copy of ``module`` cast to ``precision`` (fp16/bf16), inputs cast alike, as float32."""
    half, dtype = _cast(module, precision)
    return eager_outputs(half, inputs, dtype)


def spread(n: int, k: int) -> list[int]:
    """``min(n, k)`` indices spread evenly over ``range(n)``, starting at 0 (keeps the mix of input kinds)."""
    return list(range(n)) if n <= k else sorted({i * n // k for i in range(k)})


def _figures(m: dict[str, Any]) -> str:
    return f"SQNR {m['sqnr_db']:.1f} dB, top-1 agreement {m['top1_agreement']:.0%}"


def _output_limits(check: CheckResult) -> dict[str, float]:
    """The check's limits on the outputs themselves (SQNR, agreement), without the task-accuracy one."""
    return {k: v for k, v in check.limits.items() if k in ("min_sqnr_db", "min_top1_agreement")}


def half_precision(check: CheckResult, module: torch.nn.Module, inputs: Sequence[Sequence[np.ndarray]],
                   reference: Sequence[np.ndarray], precision: str, max_samples: int = 32,
                   budget_s: float = 120.0, int8_float_ops: bool = False) -> CheckResult:
    """``check`` with what eager PyTorch at ``precision`` gets on the same inputs, if it failed at fp16/bf16.

    At most ``max_samples`` of the inputs, spread over them, and fewer if the first one shows that
    they would take over ``budget_s`` (PyTorch's CPU half kernels are slow: 47 s a clip for
    vivit_fa_b); the reason says how many ran. ``int8_float_ops``: the check is an int8 artifact's whose
    float ops run at ``precision`` (:func:`float_ops`); only a failure there in eager too is worth a sentence.
    """
    if check.status != "failed" or precision not in HALF_DTYPES:
        return check
    try:
        half, dtype = _cast(module, precision)
        order = spread(len(inputs), max_samples)
        t0 = time.perf_counter()
        outputs = {order[0]: eager_outputs(half, [inputs[order[0]]], dtype)[0]}
        fit = max(1, int(budget_s / max(time.perf_counter() - t0, 1e-6)))
        order = spread(len(inputs), min(len(order), fit))
        outputs.update({i: eager_outputs(half, [inputs[i]], dtype)[0] for i in order if i not in outputs})
        m = accuracy.compare([reference[i] for i in order], [outputs[i] for i in order])
    except Exception as exc:  # noqa: BLE001 - an op without a half kernel on this host: say so, keep the verdict
        from edgest.capture import first_line

        note = f"eager PyTorch could not run the model at {precision} to compare ({first_line(exc)[:120]})"
        return dataclasses.replace(check, reason=f"{check.reason}; {note}")
    where = "" if len(order) == len(inputs) else f" on {len(order)} of the {len(inputs)} checked inputs"
    breaks = bool(accuracy.within(m, _output_limits(check)))
    if int8_float_ops and not breaks:
        return check
    if int8_float_ops:
        note = (f"eager PyTorch at {precision}{where} breaks the limits too ({_figures(m)}), and this int8 artifact "
                f"runs its float ops at {precision} (the target's precision option); compile with --target-option "
                "precision=fp32 (target_options={'precision': 'fp32'})")
    elif breaks:
        note = (f"eager PyTorch at {precision}{where} breaks the limits too ({_figures(m)}): the model is not "
                f"{precision}-faithful whatever the target; compile with --precision fp32 (precision='fp32')")
    else:
        note = (f"eager PyTorch at {precision}{where} meets them ({_figures(m)}): the target loses more than "
                f"{precision} has to")
    metrics = {**check.metrics, "eager_half_sqnr_db": m["sqnr_db"], "eager_half_top1_agreement": m["top1_agreement"],
               "eager_half_samples": len(order)}
    return dataclasses.replace(check, metrics=metrics, reason=f"{check.reason}; {note}")


def float_ops(check: CheckResult, target: Target, precision: str, module: torch.nn.Module,
              inputs: Sequence[Sequence[np.ndarray]], reference: Sequence[np.ndarray]) -> CheckResult:
    """``check`` with whether eager PyTorch fails at the half precision a failed int8 artifact runs its float ops at.

    That precision is the target's ``precision`` option where it has one (Core ML's fp16 default; an
    OpenVINO or TensorRT compile that asks for fp16/bf16): EMOv2's 1e-6 layer scales at init underflow
    in fp16 whether or not anything is quantised.
    """
    half = target.option("precision") if precision == "int8" and "precision" in target.option_table else None
    if half not in HALF_DTYPES:
        return check
    return half_precision(check, module, inputs, reference, half, int8_float_ops=True)


def quantisation(check: CheckResult, records: Sequence[PassRecord], pass_name: str = PASS_NAME) -> CheckResult:
    """``check`` with whether the quantize pass's own delta already breaks the limits, if it failed at int8."""
    record = next((r for r in records if r.name == pass_name and r.accuracy_delta), None)
    if check.status != "failed" or record is None or record.accuracy_delta is None:
        return check
    delta, m = record.accuracy_delta, check.metrics
    limits = _output_limits(check)
    # the delta runs on the check's random inputs only; with labelled samples in the check, compare like with like
    on_inputs = ({"sqnr_db": m["sqnr_db_inputs"], "top1_agreement": m["top1_agreement_inputs"]}
                 if "sqnr_db_inputs" in m and "top1_agreement_inputs" in m else None)
    if accuracy.within(delta, limits):
        note = (f"the quantize pass alone loses this much ({_figures(delta)}, its own delta): post-training "
                "quantisation's loss, not the runtime's; see --quant-sensitivity and --quant-skip (the quantize pass's sensitivity and skip options)")
    elif on_inputs is not None and not accuracy.within(on_inputs, limits):
        note = (f"on the random inputs its delta is measured on, the quantize pass alone meets them ({_figures(delta)}) "
                f"and so does the artifact ({_figures(on_inputs)}): the loss is on the {m.get('task_samples', 'labelled')} "
                f"labelled samples (SQNR {m.get('task_sqnr_db', float('nan')):.1f} dB), which the pass's delta does not "
                "run; check that the calibration set covers inputs like them (--calibration, --calibration-size)")
    else:
        note = f"the quantize pass alone meets them ({_figures(delta)}): the loss comes after quantisation"
    return dataclasses.replace(check, reason=f"{check.reason}; {note}")
