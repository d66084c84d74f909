"""Where Core AI int8 loses accuracy with trained weights: activation ranges, not Apple's runtime.

For one zoo model with trained weights (default: squeezetime_tiny and the checkpoint the slow
test caches), quantise with coreai-opt twice, with its default activation ranges (an exponential
moving average of min/max, ``averaging_constant`` 0.01) and with global min/max
(``GlobalMinMaxQParamsCalculator``, what ``edgest_coreai.quantizer`` uses), on edgest's calibration
clips, tracing with the first seeded noise input as a compile does (the default average starts
from that input's ranges). For each, print:

* the quantised program in eager PyTorch vs eager fp32, on seeded noise (the inputs the quantize
  pass's own delta is measured on) and on the labelled task clips the accuracy check adds;
* the same program converted by coreai-torch and run by the Core AI runtime (host build) vs the
  quantised program in PyTorch, on the same task clips: equal means the runtime is not the cause.

    python bench/coreai_int8_ranges.py --weights .pytest_cache/d/edgest-trained/squeezetime_tiny-<key>.pt

Minutes per configuration on a 2-core host (the fake-quant calibration runs in eager PyTorch).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _config(ranges: str) -> Any:
    from coreai_opt.quantization import QuantizerConfig

    if ranges == "global_minmax":
        from edgest_coreai.quantizer import _config as minmax

        return minmax(())
    return QuantizerConfig()


def _quantise(model: Any, example: Any, calibration: Any, ranges: str) -> Any:
    import torch
    from edgest_coreai.quantizer import calibrated

    module = torch.export.export(model, (example,), strict=False).module()
    finalized = calibrated(module, _config(ranges), (example,), calibration)
    return torch.export.export(finalized, (example,), strict=False)


def _outputs(module: Any, inputs: list[list[np.ndarray]]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        outs = [module(*(torch.from_numpy(x) for x in xs)) for xs in inputs]
    return [(y[0] if isinstance(y, (tuple, list)) else y).numpy() for y in outs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="squeezetime_tiny")
    parser.add_argument("--weights", required=True, type=Path)
    parser.add_argument("--calibration", type=int, default=32, help="calibration clips (edgest's default: 32)")
    parser.add_argument("--task", type=int, default=64, help="labelled task clips to compare on")
    parser.add_argument("--ranges", default="ema,global_minmax")
    args = parser.parse_args()

    import edgest_coreai.plugin
    import edgest_models.plugin
    import torch
    from edgest_coreai.convert import convert
    from edgest_coreai.device import CoreAIRunner

    from edgest.checks import accuracy
    from edgest.data.calibration import calibration_inputs
    from edgest.data.tasks import task_set
    from edgest.plugins import new_plugin_manager
    from edgest.weights.load import load_weights

    pm = new_plugin_manager(entry_points=False)
    pm.add(edgest_models.plugin, "models")
    pm.add(edgest_coreai.plugin, "coreai")
    entry = pm.registry.model(args.model)
    model = entry.build()
    load_weights(model, args.weights, family=entry.spec.family, model_name=entry.spec.name)
    calibration = calibration_inputs(entry.spec, size=args.calibration)
    task = [list(t) for t in task_set(entry.spec, args.task, 0).inputs]
    noise = accuracy.seeded_inputs([entry.spec.input.shape], 8, 0)
    example = torch.from_numpy(noise[0][0])  # as in a compile: prepare traces with the first seeded noise input
    reference = {"noise": _outputs(model, noise), "task": _outputs(model, task)}
    print(f"{args.model}, {args.weights.name}, {len(calibration)} calibration clips ({calibration.source}), "
          f"{len(task)} task clips, 8 noise inputs")
    print("| activation ranges | quantise s | program vs fp32, noise | program vs fp32, task | runtime vs program, task |")
    print("|---|---|---|---|---|")
    for ranges in args.ranges.split(","):
        t0 = time.perf_counter()
        program = _quantise(model, example, calibration, ranges)
        seconds = time.perf_counter() - t0
        ours = {k: _outputs(program.module(), v) for k, v in (("noise", noise), ("task", task))}
        folder = Path(tempfile.mkdtemp())
        try:
            convert(program, (example,), folder / "q.aimodel", "fp32")
            runner = CoreAIRunner(folder / "q.aimodel")
            on_runtime = [runner.run(xs)[0] for xs in task]
            runner.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        cells = [accuracy.compare(reference[k], ours[k]) for k in ("noise", "task")]
        rt = accuracy.compare(ours["task"], on_runtime)
        print(f"| {ranges} | {seconds:.0f} | " + " | ".join(f"{m['sqnr_db']:.1f} dB, top-1 {m['top1_agreement']:.0%}"
                                                      for m in cells)
              + f" | {rt['sqnr_db']:.1f} dB, max abs {rt['max_abs']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
