"""int8 for the OpenVINO target: NNCF post-training quantisation of the captured program.

A :class:`edgest.quantization.ProgramQuantizer`: ``nncf.quantize`` (its Torch FX backend, with
NNCF's defaults for OpenVINO: symmetric int8 weights per channel, int8 activations with ranges
from edgest's calibration set, fast bias correction; but asymmetric activations,
:data:`DEFAULT_ACTIVATION_SCHEME`, with min-max ranges, :data:`DEFAULT_RANGES`, and NNCF's 7-bit
weights for every layer, not the first only, on x86 without VNNI, :func:`overflow_fix`) on ``program.module()``; the result has
quantize/dequantize ops, which ``openvino.convert_model`` turns into FakeQuantize and the CPU
plugin runs as int8 kernels.

Why on the program and not on the IR (``nncf.quantize(ov.Model)``)? Both give the same SQNR and
speed on SqueezeTime (48.2 vs 48.1 dB, p50 within noise at one thread), but

* ``--quant-skip`` and the sensitivity table name torch modules. The FX graph carries each
  node's module path (``nn_module_stack``) exactly; the IR loses it where OpenVINO fuses ops
  (a conv folded with its BatchNorm is renamed after the Multiply it absorbed).
* an artifact quantizer writes one file in place of the float one, and an IR is two
  (``model.xml`` + ``model.bin``).

NNCF's telemetry (sent by default, without asking) is off for the calls made here.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from edgest import BadInput, TargetUnavailable
from edgest.quantization import (
    ProgramQuantizer,
    Quantized,
    before_torchao_folding,
    bn_after_convs,
    relabel_folded_convs,
    state_loop,
)
from edgest.quiet import IMPORT_CHATTER, quiet_loggers

if TYPE_CHECKING:
    import torch

#: ATen ops NNCF quantises with weights (what --quant-skip must keep float)
WEIGHTED_OPS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "linear",
                "matmul", "addmm", "mm", "bmm")
#: op types kept float where the graph has attention (NNCF IgnoredScope types): only the weighted layers run int8.
#: NNCF's defaults quantise attention's activation products too, and lost ViViT-Ti (2.9 dB, top-1 0 %; its
#: ModelType.TRANSFORMER 11.3 dB); weighted layers alone kept 24.2 dB, top-1 100 %
#: (``python bench/nncf_int8_variants.py --model vivit_fa_ti --variants default,transformer,conv_linear_only``)
ATTENTION_FLOAT_TYPES = ("matmul", "bmm", "mul", "add", "sub", "div", "scaled_dot_product_attention", "mean",
                         "avg_pool2d", "adaptive_avg_pool2d", "softmax", "layer_norm", "batch_norm")
#: ops that only move data: a dequantize before them still feeds the next weighted op in int8
VIEW_OPS = ("flatten", "view", "reshape", "permute", "transpose", "squeeze", "unsqueeze", "contiguous", "clone")


@contextlib.contextmanager
def _nncf() -> Iterator[Any]:
    """``nncf``, quiet (no log lines, no progress bars), without telemetry, and without torchao's QAT conv+BN search.

    ``nncf.quantize`` on an FX graph ends with torchao's ``_fold_conv_bn_qat``, which traces 96
    pattern graphs with ``torch.export`` looking for what QAT leaves behind (~45 s on 2 cores for
    squeezetime_tiny). NNCF fuses conv+BN itself before quantising an eval-mode graph, so the
    search finds nothing here (same graph and outputs, checked on squeezetime_tiny).
    """
    from unittest import mock

    # quiet before importing: nncf imports torchao, which logs a warning per CUDA kernel library it cannot load
    with quiet_loggers("nncf", *IMPORT_CHATTER, no_warnings=True):
        import nncf
        import nncf.experimental.torch.fx.quantization.quantize_model as fx_quantize
        import nncf.telemetry.decorator as telemetry
        from nncf.common.logging.track_progress import track
        from nncf.telemetry.wrapper import NNCFTelemetryStub

        logging.getLogger("nncf").setLevel(logging.ERROR)  # importing nncf set it to INFO again (a line per ignored op)
        show = track.__init__

        def hidden(self: Any, *args: Any, **kwargs: Any) -> None:
            show(self, *args, **{**kwargs, "disable": True})

        with (mock.patch.object(telemetry, "telemetry", NNCFTelemetryStub()),
              mock.patch.object(fx_quantize, "_fold_conv_bn_qat", lambda model: model),
              mock.patch.object(track, "__init__", hidden)):
            yield nncf


#: the ``overflow_fix`` option: ``auto`` (:func:`overflow_fix` for the CPU that builds and checks the artifact) or
#: one of NNCF's ``OverflowFix`` values, for an artifact built here for another CPU
OVERFLOW_FIXES = ("auto", "enable", "first_layer_only", "disable")


def overflow_fix(features: tuple[str, ...] | None = None, machine: str | None = None) -> tuple[str, str]:
    """NNCF's ``OverflowFix`` for a program built on this host (or ``features``/``machine``), and why.

    x86 without VNNI multiplies u8×s8 with ``VPMADDUBSW``, which adds product pairs in int16 and
    saturates; NNCF's default fixes the first layer only (7-bit weights there). A saturated product
    is a biased error: on an AVX2 CPU a small attention model's int8 IR read 11.1 dB against eager
    with NNCF's default while its quantised program (eager PyTorch) read 36.8 dB (the plugin's test
    ``test_with_attention_only_the_weighted_layers_run_int8``), and a step program's state sums it
    every step (trained lmuformer_tiny streamed at 14.2 dB in the CPU plugin, 26.8 dB in eager; with
    7-bit weights everywhere, "enable", 26.9 dB). VNNI/AMX (and Arm) accumulate in int32: NNCF's
    default is kept there.
    """
    from edgest import int8_sums_in_int32

    in_int32, why = int8_sums_in_int32(features, machine)
    if in_int32:
        return "first_layer_only", why
    return "enable", f"{why}; 7-bit weights in every layer"


#: the ``activation_ranges`` option: NNCF's per-tensor range estimators for activations, by edgest's name for them
#: (``minmax``: the calibration set's min and max; ``mean_minmax``: the mean of per-input extremes, NNCF's default)
RANGES = ("minmax", "mean_minmax")
#: the option's default, min-max. NNCF's own default, the mean of per-input extremes, clips the larger values some
#: inputs reach, and a clipped value is a biased error. Whole-input programs, trained tiny models on the 256 labelled
#: clips (``python bench/openvino_int8_ranges.py --weights-dir W``, AMD EPYC with VNNI): lmuformer_video_tiny 11.0 ->
#: 25.1 dB (task drop 2.7 -> 0.0 pt), emov2_tiny_video 11.0 -> 25.4 dB, squeezetime_tiny 14.6 -> 32.4 dB,
#: vivit_fa/fe_tiny +5 dB, lmuformer_tiny +8.6 dB, the spiking one alike (17.8 / 17.5 dB), same quantised ops; full
#: configs at random init, end to end on 8 seeded inputs at the same speed (``bench/peers.py``, docs/optimize.md):
#: squeezetime 23.9 -> 29.9 dB, vivit_fa_ti 24.3 -> 26.1, lmuformer 39.3 -> 41.5. A streaming step program's state
#: adds such an error up every step (lmuformer_tiny, trained: worst step 7.6 dB with the mean, 19.0 dB with min-max).
DEFAULT_RANGES = "minmax"
_RANGE_WORDS = {"minmax": "min-max", "mean_minmax": "mean of per-input min and max"}

#: int8 activation schemes (the ``activation_scheme`` option): NNCF's presets MIXED (asymmetric activations,
#: a zero point each) and PERFORMANCE (symmetric); weights are symmetric per channel in both
ACTIVATION_SCHEMES = {"asymmetric": "MIXED", "symmetric": "PERFORMANCE"}
#: asymmetric by default. A symmetric scale spends half its 256 steps on the side a skewed activation (a
#: LayerNorm or BN output with a shift, a GELU) barely reaches. Trained tiny models, the compile's own check
#: (random inputs pooled with 256 labelled clips), symmetric -> asymmetric: emov2_tiny_video 25.4 -> 28.3 dB,
#: top-1 agreement 94.3 -> 97.3 %, task drop 1.2 -> 0.8 pt (failed -> passed); squeezetime_tiny 32.4 -> 33.2,
#: vivit_fe_tiny 35.1 -> 37.0, vivit_fa_tiny 37.8 -> 38.5, lmuformer_tiny 30.7 -> 31.2, lmuformer_video_tiny
#: 25.1 -> 25.2, the spiking one 17.5 -> 18.0 dB. Full configs at random init: squeezetime 29.9 -> 29.8, lmuformer
#: 41.5 -> 41.3, vivit_fa_ti 26.1 -> 24.9 dB, and the same p50 within 2 % at 1 and 2 threads (IRs timed in turns,
#: ``bench/openvino_layer_profile.py``). Measured end to end by ``bench/openvino_int8_ranges.py --axis scheme``.
DEFAULT_ACTIVATION_SCHEME = "asymmetric"


def _parameters(ranges: str, activations: str, overflow: str) -> dict[str, Any]:
    """``nncf.quantize``'s preset (:data:`ACTIVATION_SCHEMES`) and advanced parameters: the activations' range
    estimator and NNCF's ``overflow`` fix (resolved, not ``auto``)."""
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
    )
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    params = AdvancedQuantizationParameters(
        activations_range_estimator_params=getattr(RangeEstimatorParametersSet, ranges.upper()))
    params.overflow_fix = OverflowFix(overflow)
    return {"advanced_parameters": params, "preset": getattr(nncf.QuantizationPreset, ACTIVATION_SCHEMES[activations])}


def has_attention(graph: torch.fx.Graph) -> bool:
    """Whether ``graph`` computes attention (a softmax, or scaled dot-product attention)."""
    return any(n.op == "call_function" and ("softmax" in str(n.target) or "scaled_dot_product" in str(n.target))
               for n in graph.nodes)


def _modules(node: Any) -> list[str]:
    return [fqn for fqn, _ in (node.meta.get("nn_module_stack") or {}).values() if fqn]


def _inside(node: Any, module: str) -> bool:
    return any(fqn == module or fqn.startswith(module + ".") for fqn in _modules(node))


def _op(node: Any) -> str:
    return str(getattr(node.target, "__name__", node.target)).split(".")[0]


def skipped_nodes(graph: torch.fx.Graph, skip: Sequence[str]) -> list[str]:
    """Names of the FX nodes traced inside the modules named in ``skip``; BadInput for a name that is no module."""
    nodes = [n for n in graph.nodes if n.op == "call_function"]
    known = sorted({fqn for n in nodes for fqn in _modules(n)}, key=lambda k: (k.count("."), k))
    names: list[str] = []
    for module in skip:
        inside = [n.name for n in nodes if _inside(n, module)]
        if not inside:
            raise BadInput(f"--quant-skip '{module}' is not a module of the model; e.g. {', '.join(known[:4])}")
        names += inside
    return names


def _through_views(node: Any) -> Any:
    """The node feeding ``node`` through ops that only move data (flatten, view, permute, ...)."""
    while getattr(node, "op", "") == "call_function" and _op(node) in VIEW_OPS and node.args:
        node = node.args[0]
    return node


def int8_ops(before: torch.fx.Graph, after: torch.fx.Graph) -> list[Any]:
    """Weighted ops NNCF quantised: an input from a dequantize (through views), or a weight that was a plain
    attribute ``before`` and is decompressed from int8 ``after``."""
    plain = {n.name for n in before.nodes if n.op == "call_function" and len(n.args) > 1
             and getattr(n.args[1], "op", "") == "get_attr"}
    out = []
    for n in after.nodes:
        if n.op != "call_function" or _op(n) not in WEIGHTED_OPS:
            continue
        feeds = [_through_views(a) for a in n.args[:2] if hasattr(a, "op")]
        rewritten = n.name in plain and len(n.args) > 1 and getattr(n.args[1], "op", "") != "get_attr"
        if rewritten or any("dequantize" in str(a.target) for a in feeds):
            out.append(n)
    return out


def _counts(quantized: list[Any], graph: torch.fx.Graph) -> dict[str, Any]:
    """Quantize/dequantize nodes, and the weighted ops that run int8, by kind."""
    targets = [str(n.target) for n in graph.nodes if n.op == "call_function"]
    return {"quantize_nodes": sum(".quantize_" in t for t in targets),
            "dequantize_nodes": sum(".dequantize_" in t for t in targets),
            "int8_ops_by_kind": dict(sorted(Counter(_op(n) for n in quantized).items()))}


def _summary(counts: dict[str, Any], skip: Sequence[str], loop: Sequence[str], fix: str) -> str:
    """The quantize pass's one-line summary: the int8 ops by kind (and 7-bit weights), then what stayed float."""
    kinds = ", ".join(f"{k} ×{v}" for k, v in counts["int8_ops_by_kind"].items())
    summary = f"NNCF int8: {sum(counts['int8_ops_by_kind'].values())} ops int8 ({kinds or 'none'})"
    if fix == "enable":
        summary += ", 7-bit weights (NNCF's overflow fix)"
    if skip:
        summary += f"; kept float: {', '.join(skip)}"
    if loop:
        summary += f"; state loop float: {', '.join(loop)}"
    return summary


class NNCFQuantizer(ProgramQuantizer):
    """NNCF post-training int8 (Torch FX backend) on the captured program; OpenVINO runs the result."""

    def __init__(self, scheme: str, ranges: str = DEFAULT_RANGES, activations: str = DEFAULT_ACTIVATION_SCHEME,
                 overflow: str = "auto") -> None:
        super().__init__(scheme)
        self.ranges = ranges  # an entry of RANGES
        self.activations = activations  # a key of ACTIVATION_SCHEMES
        self.overflow = overflow  # an entry of OVERFLOW_FIXES

    def overflow_fix(self) -> tuple[str, str]:
        """NNCF's overflow fix for this compile and why: the host's (:func:`overflow_fix`) unless the option chose."""
        if self.overflow == "auto":
            return overflow_fix()
        return self.overflow, "chosen with --target-option overflow_fix"

    def quantize_program(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...],
                         calibration: Any, skip: Sequence[str]) -> Quantized:
        """``calibration`` is edgest's CalibrationSet (``inputs``: one tuple of arrays per call; ``source``)."""
        import importlib.util

        import numpy as np
        import torch

        if importlib.util.find_spec("nncf") is None:
            raise TargetUnavailable("target 'openvino' int8 needs nncf, not installed (pip install -e plugins/edgest-openvino)")
        module = program.module()
        # NNCF folds every BN into the conv before it with torchao first: a conv weight computed from a buffer fails
        # there ("Expected get_attr node": the spiking LMUFormer), a conv with other users is folded wrongly
        rewrites = before_torchao_folding(module)
        ignored = skipped_nodes(module.graph, skip)
        foldable = bn_after_convs(module)
        loop = [n for n in state_loop(module.graph, self.states) if n not in ignored]
        fix, fix_why = self.overflow_fix()
        with _nncf() as nncf:
            dataset = nncf.Dataset(calibration.inputs,
                                   lambda xs: tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in xs))
            float_types = list(ATTENTION_FLOAT_TYPES) if has_attention(module.graph) else []
            scope = (nncf.IgnoredScope(names=ignored + loop, types=float_types, validate=False)
                     if ignored or loop or float_types else None)
            quantized = nncf.quantize(module, dataset, subset_size=len(calibration.inputs), ignored_scope=scope,
                                      **_parameters(self.ranges, self.activations, fix))
            relabel_folded_convs(quantized, foldable)  # a folded conv computes its BN's output: edgest debug reads it so
            done = int8_ops(module.graph, quantized.graph)
            leaked = [f"{n.name} ({_modules(n)[-1]})" for n in done if any(_inside(n, m) for m in skip)]
            if leaked:
                raise BadInput(f"--quant-skip {', '.join(skip)}: NNCF quantised {', '.join(leaked[:4])} anyway, so "
                               "target 'openvino' cannot keep it float; drop it from --quant-skip or choose another target")
            new = torch.export.export(quantized, tuple(example_inputs), strict=False)
        counts = _counts(done, quantized.graph)
        details = {"quantizer": f"NNCF {nncf.__version__} post-training (Torch FX backend), OpenVINO target device",
                   "preset": f"{ACTIVATION_SCHEMES[self.activations].lower()} ({self.activations} activations)",
                   "weights": "int8 per channel, symmetric" + (", 7-bit range" if fix == "enable" else ""),
                   "activations": f"int8 per tensor, {self.activations}, static ranges from calibration "
                                  f"({_RANGE_WORDS[self.ranges]})",
                   "activation_ranges": self.ranges, "activation_scheme": self.activations,
                   "bias_correction": "fast", "nncf_ignored_nodes": len(ignored),
                   "overflow_fix": fix, "overflow_fix_reason": fix_why,
                   **rewrites,
                   "float_op_types": float_types, **counts}
        if float_types:
            details["activations"] += "; attention in the graph: only the weighted layers int8"
        if self.states:
            details["state_loop_float"] = loop
        return Quantized(_summary(counts, skip, loop, fix), details, new)
