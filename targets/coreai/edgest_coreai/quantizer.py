"""int8 for the Core AI target: coreai-opt's ``Quantizer`` (prepare → calibrate → finalize) on the captured program.

coreai-opt's graph mode is torchao's PT2E with Apple's annotations: ``prepare`` exports the model
and inserts fake-quantize modules (its default config: int8 weights and activations), edgest's
calibration clips run under ``calibration_mode()``, and ``finalize()`` (backend Core AI) leaves
``coreai.quantize`` / ``coreai.dequantize`` and ``coreai.constexpr_blockwise_shift_scale`` custom
ops, which coreai-torch lowers to Core AI's own quantised ops. ``--quant-skip`` maps onto
coreai-opt's ``module_name_configs`` (a module name → ``None`` keeps it float).

Activation ranges are the global min/max over the calibration clips, not coreai-opt's default
moving average (``averaging_constant`` 0.01). That average starts from the example input
``prepare`` traces with (edgest's seeded standard-normal noise) and moves 1 % towards each clip,
so after 32 clips it still holds about 72 % of the noise's ranges and real clips are clipped. With
trained squeezetime_tiny the quantised program itself then read 8.3 dB on the check's task clips
(36.7 dB on noise), and Apple's runtime reproduced that program exactly; global min/max passes
(32.0 dB, task drop 0 pt). ``bench/coreai_int8_ranges.py`` shows both side by side.

Everything heavy is imported inside :meth:`CoreAIOptQuantizer.quantize_program`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgest.quantization import ProgramQuantizer, Quantized, check_skip

if TYPE_CHECKING:
    import torch

    from edgest.data.calibration import CalibrationSet


def _config(skip: Sequence[str]) -> Any:
    """coreai-opt's default int8 config with global min/max activation ranges; ``skip`` kept float."""
    from coreai_opt.quantization import QuantizerConfig
    from coreai_opt.quantization.spec.qparams_calculator import (
        GlobalMinMaxQParamsCalculator,
    )

    g = QuantizerConfig().global_config
    minmax = {"qparam_calculator_cls": GlobalMinMaxQParamsCalculator}
    g = g.model_copy(update={"op_input_spec": {k: v.model_copy(update=minmax) for k, v in g.op_input_spec.items()},
                             "op_output_spec": {k: v.model_copy(update=minmax) for k, v in g.op_output_spec.items()}})
    # keys are regular expressions over module names: the module itself and everything inside it
    return QuantizerConfig(global_config=g, module_name_configs={rf"{re.escape(s)}(\..*)?": None for s in skip})


def _custom_ops(program: Any) -> dict[str, int]:
    """coreai custom ops in ``program`` (quantize, dequantize, constexpr_*), counted."""
    ops = Counter(str(n.target).split(".")[1] for n in program.graph.nodes
                  if n.op == "call_function" and str(n.target).startswith("coreai."))
    return dict(sorted(ops.items()))


class CoreAIOptQuantizer(ProgramQuantizer):
    """Static W8A8 with coreai-opt (graph mode, default int8 config); activation ranges: min/max over the calibration clips."""

    def quantize_program(
        self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...],
        calibration: CalibrationSet, skip: Sequence[str],
    ) -> Quantized:
        import torch

        from edgest_coreai.convert import quiet

        check_skip(program.graph, skip)
        caught: list[str] = []
        with quiet(caught):
            from coreai_opt.quantization import Quantizer

            quantizer = Quantizer(program.module(), _config(skip))
            prepared = quantizer.prepare(tuple(example_inputs))
            prepared.eval()  # batch norm in inference form (coreai-opt rewrites the graph; returns None)
            with torch.no_grad(), quantizer.calibration_mode():
                for xs in calibration.inputs:
                    prepared(*(torch.from_numpy(x) for x in xs))
            finalized = quantizer.finalize()
            finalized.eval()
            new = torch.export.export(finalized, tuple(example_inputs), strict=False)
        ops = _custom_ops(new)
        details = {"quantizer": "coreai-opt Quantizer (graph mode, torchao PT2E), finalized for Core AI",
                   "config": ("QuantizerConfig() default (int8 symmetric: weights per channel, activations per tensor) with "
                              "global min/max activation ranges (GlobalMinMaxQParamsCalculator)"),
                   "kept_float": list(skip), "coreai_ops": ops, "calibration_inputs": len(calibration.inputs),
                   "warnings": caught}
        summary = f"coreai-opt int8 (W8A8): {ops.get('quantize', 0)} quantize ops"
        if skip:
            summary += f"; kept float: {', '.join(skip)}"
        return Quantized(summary, details, new)
