"""Which NNCF setting, if any, makes a model's OpenVINO int8 faithful: quantise the captured program with several
``nncf.quantize`` settings and compare each with eager fp32 in PyTorch (NNCF's Torch FX backend inserts
quantize/dequantize ops; PyTorch runs them in fp32, so this measures the scheme, not OpenVINO's kernels).

Calibration is edgest's own default set (``edgest.data.calibration.calibration_inputs``); the comparison
inputs are seeded noise, as the accuracy check's. A variant that fails here fails in OpenVINO too; one that
passes here can still lose accuracy in the CPU plugin (int16 saturation on x86 without VNNI: the target's
``overflow_fix``), which ``edgest compile`` then shows.

    python bench/nncf_int8_variants.py --model emov2_1m --weights W.pt --variants default,mixed,conv_linear_only

Minutes per variant on a 2-core host (statistics collection runs the model in eager PyTorch).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from edgest_openvino.quantizer import ATTENTION_FLOAT_TYPES

#: op types each variant keeps float (NNCF IgnoredScope types), beside its preset and model type
FLOAT_TYPES = {
    "no_matmul": ["matmul", "bmm", "baddbmm", "scaled_dot_product_attention"],
    "no_mul_add": ["mul", "add", "sub", "div"],
    "conv_linear_only": list(ATTENTION_FLOAT_TYPES),  # the openvino target's choice for graphs with attention
}


def variant(name: str) -> dict[str, Any]:
    """``nncf.quantize`` keyword arguments for a variant name."""
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
    )
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    if name in FLOAT_TYPES:
        return {"ignored_scope": nncf.IgnoredScope(types=FLOAT_TYPES[name], validate=False)}
    return {"default": {}, "mixed": {"preset": nncf.QuantizationPreset.MIXED},
            "transformer": {"model_type": nncf.ModelType.TRANSFORMER},
            "minmax": {"advanced_parameters": AdvancedQuantizationParameters(
                activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)},
            "overflow_fix": {"advanced_parameters": AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE)},
            "no_bias_correction": {"advanced_parameters": AdvancedQuantizationParameters(disable_bias_correction=True)},
            }[name]


def captured(model: str, weights: str | None) -> tuple[Any, Any, Any]:
    """(eager module, captured program, model spec) as a compile builds them."""
    import torch

    from edgest.checks.accuracy import seeded_inputs
    from edgest.plan import plan
    from edgest.weights import load_weights

    p = plan(model, "eager", out_dir="/tmp/edgest-bench-never-written", samples=1, latency=None, task_samples=0,
             weights=weights)
    module = p.build_module().eval()
    if p.weights is not None:
        load_weights(module, p.weights, family=p.spec.family, weights_format=p.weights_format, model_name=p.spec.name)
    x = torch.from_numpy(seeded_inputs([tuple(p.spec.input.shape)], 1, 0)[0][0])
    return module, torch.export.export(module, (x,), strict=False), p.spec


def sqnr_and_agreement(ref: list[Any], out: list[Any]) -> tuple[float, float]:
    """SQNR in dB over all outputs, and top-1 agreement."""
    signal = sum(float((r.double() ** 2).sum()) for r in ref)
    noise = sum(float(((r.double() - o.double()) ** 2).sum()) for r, o in zip(ref, out))
    agree = float(np.mean([int(r.argmax() == o.argmax()) for r, o in zip(ref, out)]))
    return 10 * np.log10(signal / max(noise, 1e-30)), agree


def main() -> None:
    import nncf
    import torch

    from edgest.checks.accuracy import seeded_inputs
    from edgest.data.calibration import calibration_inputs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--variants", default="default,mixed,transformer,minmax,overflow_fix,conv_linear_only")
    ap.add_argument("--calibration-size", type=int, default=32)
    ap.add_argument("--samples", type=int, default=8)
    args = ap.parse_args()
    module, program, spec = captured(args.model, args.weights)
    cal = calibration_inputs(spec, args.calibration_size)
    inputs = [torch.from_numpy(xs[0]) for xs in seeded_inputs([tuple(spec.input.shape)], args.samples, 1234)]
    with torch.no_grad():
        ref = [module(x) for x in inputs]
    data = nncf.Dataset(list(cal.inputs), lambda xs: tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in xs))
    print(f"{args.model}: weights {args.weights or 'random init'}; calibration: {cal.source}; {args.samples} noise inputs")
    print("| variant | SQNR dB | top-1 agreement | seconds |\n|---|---|---|---|")
    for name in args.variants.split(","):
        t0 = time.perf_counter()
        quantized = nncf.quantize(program.module(), data, subset_size=len(cal.inputs), **variant(name))
        with torch.no_grad():
            db, agree = sqnr_and_agreement(ref, [quantized(x) for x in inputs])
        print(f"| {name} | {db:.1f} | {agree:.0%} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
