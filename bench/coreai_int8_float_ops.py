"""Which of coreai-opt's int8 roundings cost trained models their top-1: the float rules of edgest_coreai.quantizer, one at a time.

For each zoo model with a trained checkpoint (those the slow tests cache), quantise with
coreai-opt as ``edgest_coreai.quantizer`` does (global min/max ranges on edgest's calibration
clips, prepare tracing the first seeded noise input as a compile does) under three rule sets:

* ``coreai-opt``: coreai-opt's default annotations (every registered op, the logits included);
* ``+ logits float``: the output layers kept float and no quantize/dequantize pair on the logits;
* ``+ elementwise float``: also add/mul/sub/cat float (:data:`edgest_coreai.quantizer.FLOAT_OPS`),
  which is what edgest ships.

and print the quantised program (eager PyTorch; Apple's runtime reproduces it, see
``bench/coreai_int8_ranges.py``) against eager fp32 on the accuracy check's inputs: 8 seeded noise
inputs and 256 labelled task clips, pooled top-1 agreement (the check's limit: 95 %), SQNR on the
clips and on noise, and the task top-1 drop (limit: 1 pt).

    python bench/coreai_int8_float_ops.py --models emov2_tiny_video,squeezetime_tiny

About a minute per model and rule set on a 2-core host.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

#: rule set → (elementwise ops float, logits float)
RULES = {"coreai-opt": (False, False), "+ logits float": (False, True), "+ elementwise float": (True, True)}


def _quantise(program: Any, example: Any, calibration: Any, float_ops: bool, float_logits: bool) -> Any:
    """prepare → calibrate → finalize as edgest_coreai.quantizer does, with the rules asked for."""
    from edgest_coreai import quantizer as q

    layers = q.output_layers(program.graph) if float_logits else []
    finalized = q.calibrated(program.module(), q._config(layers, q.FLOAT_OPS if float_ops else ()), (example,), calibration)
    if float_logits:
        q._float_output_path(finalized)
    return finalized


def _outputs(module: Any, inputs: list[list[np.ndarray]]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        outs = [module(*(torch.from_numpy(x) for x in xs)) for xs in inputs]
    return [(y[0] if isinstance(y, (tuple, list)) else y).numpy() for y in outs]


def _model(name: str, weights_dir: Path) -> tuple[Any, Any]:
    """The zoo entry and its model with the cached trained weights loaded."""
    import edgest_coreai.plugin
    import edgest_models.plugin

    from edgest.plugins import new_plugin_manager
    from edgest.weights.load import load_weights

    pm = new_plugin_manager(entry_points=False)
    pm.add(edgest_models.plugin, "models")
    pm.add(edgest_coreai.plugin, "coreai")
    entry = pm.registry.model(name)
    weights = next(iter(sorted(weights_dir.glob(f"{name}-*.pt"))), None)
    if weights is None:
        raise SystemExit(f"no trained checkpoint for {name} in {weights_dir} (run the slow tests once)")
    model = entry.build()
    load_weights(model, weights, family=entry.spec.family, model_name=entry.spec.name)
    return entry, model.eval()


def _rows(name: str, weights_dir: Path, task_size: int) -> None:
    import torch

    from edgest.checks import accuracy
    from edgest.data.calibration import calibration_inputs
    from edgest.data.tasks import task_set

    entry, model = _model(name, weights_dir)
    calibration = calibration_inputs(entry.spec)
    task = task_set(entry.spec, task_size, 0)
    clips = [list(t) for t in task.inputs]
    noise = accuracy.seeded_inputs([entry.spec.input.shape], 8, 0)
    example = torch.from_numpy(noise[0][0])
    program = torch.export.export(model, (example,), strict=False)
    ref_noise, ref_clips = _outputs(model, noise), _outputs(model, clips)
    for rules, (float_ops, float_logits) in RULES.items():
        module = _quantise(program, example, calibration, float_ops, float_logits)
        out_noise, out_clips = _outputs(module, noise), _outputs(module, clips)
        pooled = accuracy.compare(ref_noise + ref_clips, out_noise + out_clips)
        on_clips, on_noise = accuracy.compare(ref_clips, out_clips), accuracy.compare(ref_noise, out_noise)
        drop = accuracy.task_top1(ref_clips, out_clips, task.labels)["task_top1_drop_pts"]
        print(f"| {name} | {rules} | {pooled['top1_agreement']:.1%} | {on_clips['sqnr_db']:.1f} dB | "
              f"{on_noise['sqnr_db']:.1f} dB | {drop:+.1f} pt |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="emov2_tiny_video", help="comma-separated zoo names")
    parser.add_argument("--weights-dir", type=Path, default=Path(".pytest_cache/d/edgest-trained"))
    parser.add_argument("--task", type=int, default=256, help="labelled task clips (the check's default: 256)")
    args = parser.parse_args()
    print("| model | rules | top-1 agreement, pooled | SQNR, clips | SQNR, noise | task drop |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        _rows(name, args.weights_dir, args.task)


if __name__ == "__main__":
    main()
