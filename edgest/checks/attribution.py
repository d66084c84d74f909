"""Whose loss a failed accuracy check shows: the target's, or the precision's own.

A target at fp16 or int8 is judged against eager PyTorch fp32. When it fails, the useful next
question is whether any artifact at that precision could pass. Two measurements answer it:

* half precision (fp16, bf16): a copy of the eager model cast to that dtype, run by PyTorch on the
  same inputs. If it breaks the limits too, the model is not half-precision-faithful (spiking
  neurons flip on a threshold, for one) and no target will do better; if it meets them, the
  target loses more than the arithmetic has to;
* int8: the ``quantize`` pass's own accuracy delta (quantised vs float program, or float vs
  quantised artifact for artifact-stage quantizers), which the pipeline already measures.

Either sentence is appended to the failed check's reason; the figures go into its metrics.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.checks import accuracy
from edgest.records import CheckResult, PassRecord

if TYPE_CHECKING:
    import torch

#: half precisions eager PyTorch can run a model in, by report precision
HALF_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def eager_in_dtype(module: torch.nn.Module, inputs: Sequence[Sequence[np.ndarray]], precision: str) -> list[np.ndarray]:
    """First outputs of a copy of ``module`` cast to ``precision`` (fp16/bf16), inputs cast alike, as float32."""
    import torch

    dtype = getattr(torch, HALF_DTYPES[precision])
    half = copy.deepcopy(module).to(dtype).eval()
    outs = []
    with torch.no_grad():
        for xs in inputs:
            y = half(*(torch.from_numpy(np.asarray(x)).to(dtype) for x in xs))
            y = y[0] if isinstance(y, (tuple, list)) else y
            outs.append(y.float().numpy())
    return outs


def _figures(m: dict[str, Any]) -> str:
    return f"SQNR {m['sqnr_db']:.1f} dB, top-1 agreement {m['top1_agreement']:.0%}"


def half_precision(check: CheckResult, module: torch.nn.Module, inputs: Sequence[Sequence[np.ndarray]],
                   reference: Sequence[np.ndarray], precision: str) -> CheckResult:
    """``check`` with what eager PyTorch at ``precision`` gets on the same inputs, if it failed at fp16/bf16."""
    if check.status != "failed" or precision not in HALF_DTYPES:
        return check
    try:
        m = accuracy.compare(reference, eager_in_dtype(module, inputs, precision))
    except Exception as exc:  # noqa: BLE001 - an op without a half kernel on this host: say so, keep the verdict
        from edgest.capture import first_line

        note = f"eager PyTorch could not run the model at {precision} to compare ({first_line(exc)[:120]})"
        return dataclasses.replace(check, reason=f"{check.reason}; {note}")
    limits = {k: v for k, v in check.limits.items() if k in ("min_sqnr_db", "min_top1_agreement")}
    if accuracy.within(m, limits):
        note = (f"eager PyTorch at {precision} breaks the limits too ({_figures(m)}): the model is not "
                f"{precision}-faithful whatever the target; compile with --precision fp32")
    else:
        note = f"eager PyTorch at {precision} meets them ({_figures(m)}): the target loses more than {precision} has to"
    metrics = {**check.metrics, "eager_half_sqnr_db": m["sqnr_db"], "eager_half_top1_agreement": m["top1_agreement"]}
    return dataclasses.replace(check, metrics=metrics, reason=f"{check.reason}; {note}")


def quantisation(check: CheckResult, records: Sequence[PassRecord], pass_name: str = "quantize") -> CheckResult:
    """``check`` with whether the quantize pass's own delta already breaks the limits, if it failed at int8."""
    record = next((r for r in records if r.name == pass_name and r.accuracy_delta), None)
    if check.status != "failed" or record is None or record.accuracy_delta is None:
        return check
    delta = record.accuracy_delta
    limits = {k: v for k, v in check.limits.items() if k in ("min_sqnr_db", "min_top1_agreement")}
    if accuracy.within(delta, limits):
        note = (f"the quantize pass alone loses this much ({_figures(delta)}, its own delta): post-training "
                "quantisation's loss, not the runtime's; see --quant-sensitivity and --quant-skip")
    else:
        note = f"the quantize pass alone meets them ({_figures(delta)}): the loss comes after quantisation"
    return dataclasses.replace(check, reason=f"{check.reason}; {note}")
