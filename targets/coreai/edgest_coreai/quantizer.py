"""int8 for the Core AI target: coreai-opt's ``Quantizer`` (prepare → calibrate → finalize) on the captured program.

coreai-opt's graph mode is torchao's PT2E with Apple's annotations: ``prepare`` exports the model
and inserts fake-quantize modules (its default config: int8 weights and activations), edgest's
calibration clips run under ``calibration_mode()``, and ``finalize()`` (backend Core AI) leaves
``coreai.quantize`` / ``coreai.dequantize`` and ``coreai.constexpr_blockwise_shift_scale`` custom
ops, which coreai-torch lowers to Core AI's own quantised ops. ``--quant-skip`` maps onto
coreai-opt's ``module_name_configs`` (a module name → ``None`` keeps it float).

Activation ranges are the global min/max over the calibration clips (and the example input
``prepare`` traces with, which sets the first range), not coreai-opt's default moving average
(``averaging_constant`` 0.01). That average starts from the example input (edgest's seeded
standard-normal noise) and moves 1 % towards each clip, so after 32 clips it still holds about 72 %
of the noise's ranges and real clips are clipped. With trained squeezetime_tiny the quantised
program itself then read 8.3 dB on the check's task clips (36.7 dB on noise), and Apple's runtime
reproduced that program exactly; global min/max passes (32.0 dB, task drop 0 pt).
``bench/coreai_int8_ranges.py`` shows both side by side.

Where edgest departs from coreai-opt's default annotations (as the ONNX and ExecuTorch int8 do),
measured on trained emov2_tiny_video, quantised program vs eager on the check's 8 noise inputs and
256 task clips (``bench/coreai_int8_float_ops.py``; pooled top-1 agreement, SQNR on the clips):

* **The logits stay float** (:func:`output_layers`, :func:`_float_output_path`): the last layer
  before the outputs (a ``Linear``/conv, through reshapes, means and pools) is kept float like a
  ``--quant-skip`` module, and the quantize/dequantize pairs on its input and between it and the
  outputs are dropped. coreai-opt rounded the logits to 256 levels of one calibrated range (EMOv2:
  three times, the head's output, the reshape and the temporal mean) and the head's 480 weights to
  int8; neither buys anything (nothing int8 reads the logits; the head is a few hundred MACs) and
  the rounding lands on the logits directly, where a small model's near-ties flip: 80.7 % → 96.6 %
  (25.3 → 26.3 dB).
* **Elementwise add/mul/sub and concatenation stay float** (:data:`FLOAT_OPS`): coreai-opt rounds
  both inputs and the output of each, so a residual stream is requantised up to three times a
  block (layer scale, skip add) and a concat puts all its inputs on one shared scale. They do no
  multiply-accumulates; the next conv/linear/matmul quantises what it reads: 96.6 % → 98.1 %
  (26.3 → 28.8 dB).

Tried and not taken (same measure, each on top of the default): asymmetric activations
(``qscheme="asymmetric"``: SiLU/GELU outputs gain ~6 dB each, yet the clips lost 0.3-1 dB and
agreement moved within noise), ranges without the noise example (clips 25.3 → 25.0 dB, noise
37 → 27 dB), only op inputs quantised (``op_output_spec`` None: +1.5 dB, agreement unchanged).
coreai-opt offers no histogram/percentile range calculator (``minmax`` only).

Everything heavy is imported inside :meth:`CoreAIOptQuantizer.quantize_program`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgest.quantization import ProgramQuantizer, Quantized, check_skip, output_path

if TYPE_CHECKING:
    import torch

    from edgest.data.calibration import CalibrationSet

#: op types (coreai-opt's ``op_type_config`` keys) kept float: elementwise arithmetic and concatenation
FLOAT_OPS = ("add", "add_", "mul", "mul_", "sub", "sub_", "isub", "cat", "concat")
#: ops that only move, reshape, pick or average values: the output path runs back through them
_PASS_THROUGH = frozenset({"mean", "view", "reshape", "flatten", "permute", "transpose", "squeeze", "unsqueeze",
                           "contiguous", "clone", "dropout", "alias", "select", "slice", "getitem", "_to_copy",
                           "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
                           "adaptive_avg_pool3d"})
#: layers with weights: the first one back from an output is an output layer
_LAYERS = frozenset({"linear", "conv1d", "conv2d", "conv3d", "convolution", "conv_transpose1d", "conv_transpose2d",
                     "conv_transpose3d"})


def _op(node: Any) -> str:
    """``aten.mean.dim`` → ``mean``, ``coreai.quantize.default`` → ``quantize``, Python's ``getitem``; "" if not a call."""
    if node.op != "call_function":
        return ""
    target = str(node.target)
    if "getitem" in target:
        return "getitem"
    return target.split(".")[1] if "." in target else target


def output_layers(graph: Any) -> list[str]:
    """Module paths of the layers that compute the graph's outputs: back from each output through :data:`_PASS_THROUGH`."""
    found = set()
    for node in output_path(graph, lambda n: _op(n) in _PASS_THROUGH):
        stack = list((node.meta.get("nn_module_stack") or {}).values())
        if _op(node) in _LAYERS and stack and stack[-1][0]:  # a layer traced at the top level has no module to keep float
            found.add(stack[-1][0])
    return sorted(found)


def _is_coreai(node: Any, op: str) -> bool:
    """Whether ``node`` calls ``coreai.<op>`` (the packet after finalize, an overload after export)."""
    return node.op == "call_function" and str(node.target).split(".")[:2] == ["coreai", op]


def _unpair(gm: Any, user: Any, arg: Any) -> Any:
    """``user`` reads ``x`` instead of ``dequantize(quantize(x))``; the pair is erased once unused. Returns what it reads."""
    if not (_is_coreai(arg, "dequantize") and _is_coreai(arg.args[0], "quantize")):
        return arg
    q = arg.args[0]
    source = q.args[0]
    user.replace_input_with(arg, source)
    qparams = dict.fromkeys(n for n in (*arg.all_input_nodes, *q.all_input_nodes) if n.op == "get_attr")  # scale, zp
    for node in (arg, q, *qparams):
        if not node.users:
            gm.graph.erase_node(node)
    return source


def _float_output_path(gm: Any) -> int:
    """Drop the quantize/dequantize pairs from the outputs back through :data:`_PASS_THROUGH` to the output layers' inputs.

    Returns how many pairs went. An output layer's own inputs are unpaired, and the walk stops there.
    """
    dropped, seen = 0, set()
    todo = [n for n in gm.graph.nodes if n.op == "output"]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        walk_on = node.op == "output" or _op(node) in _PASS_THROUGH  # a layer's inputs are unpaired, no further
        for arg in list(node.all_input_nodes):
            source = _unpair(gm, node, arg)
            dropped += source is not arg
            if walk_on and (_op(source) in _PASS_THROUGH or _op(source) in _LAYERS):
                todo.append(source)
    gm.graph.lint()
    gm.recompile()
    return dropped


def _config(skip: Sequence[str], float_ops: Sequence[str] = FLOAT_OPS) -> Any:
    """coreai-opt's default int8 config with global min/max activation ranges; ``float_ops`` and ``skip`` kept float."""
    from coreai_opt.quantization import QuantizerConfig
    from coreai_opt.quantization.spec.qparams_calculator import (
        GlobalMinMaxQParamsCalculator,
    )

    g = QuantizerConfig().global_config
    minmax = {"qparam_calculator_cls": GlobalMinMaxQParamsCalculator}
    g = g.model_copy(update={"op_input_spec": {k: v.model_copy(update=minmax) for k, v in g.op_input_spec.items()},
                             "op_output_spec": {k: v.model_copy(update=minmax) for k, v in g.op_output_spec.items()},
                             "op_type_config": dict.fromkeys(float_ops)})
    # keys are regular expressions over module names: the module itself and everything inside it
    return QuantizerConfig(global_config=g, module_name_configs={rf"{re.escape(s)}(\..*)?": None for s in skip})


def _custom_ops(program: Any) -> dict[str, int]:
    """coreai custom ops in ``program`` (quantize, dequantize, constexpr_*), counted."""
    ops = Counter(str(n.target).split(".")[1] for n in program.graph.nodes
                  if n.op == "call_function" and str(n.target).startswith("coreai."))
    return dict(sorted(ops.items()))


def calibrated(module: Any, config: Any, example_inputs: Sequence[Any], calibration: CalibrationSet) -> Any:
    """coreai-opt's prepare (tracing ``example_inputs``) → ``calibration``'s inputs → finalize, on ``module``."""
    import torch
    from coreai_opt.quantization import Quantizer

    quantizer = Quantizer(module, config)
    prepared = quantizer.prepare(tuple(example_inputs))
    prepared.eval()  # batch norm in inference form (coreai-opt rewrites the graph; returns None)
    with torch.no_grad(), quantizer.calibration_mode():
        for xs in calibration.inputs:
            prepared(*(torch.from_numpy(x) for x in xs))
    finalized = quantizer.finalize()
    finalized.eval()
    return finalized


class CoreAIOptQuantizer(ProgramQuantizer):
    """Static W8A8 with coreai-opt (graph mode); min/max ranges over the calibration clips; logits and elementwise ops float."""

    def quantize_program(
        self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...],
        calibration: CalibrationSet, skip: Sequence[str],
    ) -> Quantized:
        import torch

        from edgest_coreai.convert import quiet

        check_skip(program.graph, skip)
        outputs = [m for m in output_layers(program.graph) if m not in skip]
        caught: list[str] = []
        with quiet(caught):
            finalized = calibrated(program.module(), _config([*skip, *outputs]), example_inputs, calibration)
            dropped = _float_output_path(finalized)
            new = torch.export.export(finalized, tuple(example_inputs), strict=False)
        ops = _custom_ops(new)
        details = {"quantizer": "coreai-opt Quantizer (graph mode, torchao PT2E), finalized for Core AI",
                   "config": ("QuantizerConfig() default (int8 symmetric: weights per channel, activations per tensor) with "
                              "global min/max activation ranges (GlobalMinMaxQParamsCalculator); op types kept float: "
                              f"{', '.join(FLOAT_OPS)}; the output layers kept float and the logits not requantised"),
                   "kept_float": list(skip), "output_layers_float": outputs, "output_qdq_dropped": dropped,
                   "coreai_ops": ops, "calibration_inputs": len(calibration.inputs), "warnings": caught}
        summary = f"coreai-opt int8 (W8A8): {ops.get('quantize', 0)} quantize ops"
        if skip:
            summary += f"; kept float: {', '.join(skip)}"
        return Quantized(summary, details, new)
