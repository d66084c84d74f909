"""W8A8 for the Core ML target: PT2E with ExecuTorch's ``CoreMLQuantizer`` on the captured program.

coremltools' own activation quantisation (``coremltools.optimize.coreml``) calibrates by
*predicting* with Core ML, so it fails off macOS. The PT2E route works anywhere: prepare the
program with ``CoreMLQuantizer`` (coremltools' ``LinearQuantizerConfig``: symmetric int8
per-channel weights, uint8 activations), run the calibration clips in PyTorch, convert, export
again; ``ct.convert`` then turns the Q/DQ pairs into MIL ``quantize`` / ``dequantize`` ops and
the weights into ``constexpr_affine_dequantize``, all of which the MIL reference interpreter runs.

executorch, torchao and coremltools are imported inside :meth:`CoreMLPT2EQuantizer.quantize_program`.

Status: the MIL reference reproduces torch's own quantised program (squeezetime_tiny: bit-exact
output) once coremltools' ``int_op_canonicalization`` pass is left out of the conversion (see
``convert.DROPPED_PASSES``: it dropped a requantisation between two different scales in the head,
which is what made squeezetime_tiny's W8A8 package read 16.4 dB; now 19.0 dB and passed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgest.errors import TargetUnavailable
from edgest.quantization import (
    ProgramQuantizer,
    Quantized,
    before_torchao_folding,
    bn_after_convs,
    relabel_folded_convs,
    state_loop,
)
from edgest.quantize.float_ops import aten_name, by_kind, float_rules, rules_note
from edgest.quantize.marks import qdq_targets
from edgest.quantize.patterns import no_qat_conv_bn_fold
from edgest.quantize.skip import check_skip, skipped_nodes
from edgest.quiet import quiet_loggers

if TYPE_CHECKING:
    import torch

    from edgest.data.calibration import CalibrationSet

#: coremltools LinearQuantizerConfig global settings (milestones all 0: post-training, observers on from the start;
#: the target's ``int8_scheme`` option sets ``quantization_scheme``); min-max observers: the calibration set's whole
#: range (coremltools' default, a moving average with constant 0.01 made for QAT, left 32 calibration clips' ranges
#: near the first one's: trained squeezetime_tiny 15.1 dB, now 32.9 dB, bench/int8_float_rules.py --target coreml;
#: a streaming step's state summed the clipping: trained lmuformer_tiny's worst step 2.3 dB, 28.0 dB with min-max)
CONFIG: dict[str, Any] = {"quantization_scheme": "symmetric", "milestones": [0, 0, 10, 10],
                          "activation_dtype": "quint8", "weight_dtype": "qint8", "weight_per_channel": True,
                          "activation_observer": "min_max", "weight_observer": "min_max"}


def cache_pattern_graphs() -> None:
    """Capture ``CoreMLQuantizer``'s pattern graphs without Dynamo, each once per process
    (:func:`edgest.quantize.patterns.fast_pattern_graphs`).

    Its annotator captures every conv/linear/binary-op pattern it knows (405), on every
    ``prepare_pt2e``, whatever the model: 73 s through Dynamo on a 2-core AVX2 host, 13 s non-strict
    (``bench/pattern_capture.py``), and none the second time in a process (tests, benchmarks, the Python API).
    """
    from executorch.backends.apple.coreml.quantizer import (
        _coreml_quantizer_utils as utils,
    )

    from edgest.quantize.patterns import fast_pattern_graphs

    fast_pattern_graphs(utils, "_get_aten_graph_module")


def _holding(quantizer: Any, names: set[str]) -> Any:
    """``quantizer`` whose ``annotate`` leaves the nodes named in ``names`` float (a streaming step's state loop).

    They are marked annotated, without quantisation specs, while its patterns run, so no pattern takes them.
    """
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation
    from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY

    annotate = quantizer.annotate

    def held(model: Any) -> Any:
        nodes = [n for n in model.graph.nodes if n.name in names and Q_ANNOTATION_KEY not in n.meta]
        for node in nodes:
            node.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(_annotated=True)
        model = annotate(model)
        for node in nodes:
            del node.meta[Q_ANNOTATION_KEY]
        return model

    quantizer.annotate = held
    return quantizer


def _summary(qdq: Counter[str], skip: Sequence[str], loop: Sequence[str], floats: dict[str, dict[str, int]]) -> str:
    """The quantize pass's one-line summary: Q nodes, and what stays float and why."""
    summary = f"Core ML PT2E W8A8 (CoreMLQuantizer): {sum(v for k, v in qdq.items() if k.startswith('quantize'))} quantize nodes"
    if skip:
        summary += f"; kept float: {', '.join(skip)}"
    if loop:
        summary += f"; state loop float: {', '.join(loop)}"
    return summary + rules_note(floats)


class CoreMLPT2EQuantizer(ProgramQuantizer):
    """Static W8A8 through PT2E with ``CoreMLQuantizer``; calibration clips give the activation ranges.

    ``int8_scheme``: coremltools' ``quantization_scheme``, ``symmetric`` or ``affine`` (weights and activations).
    """

    def __init__(self, scheme: str, int8_scheme: str = "symmetric") -> None:
        super().__init__(scheme)
        self.int8_scheme = int8_scheme

    def quantize_program(
        self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...],
        calibration: CalibrationSet, skip: Sequence[str],
    ) -> Quantized:
        import importlib.util

        import torch

        missing = [m for m in ("executorch", "torchao") if importlib.util.find_spec(m) is None]
        if missing:
            raise TargetUnavailable(f"target 'coreml' int8 needs {', '.join(missing)} for PT2E with CoreMLQuantizer "
                                    "(pip install -e targets/executorch)")
        check_skip(program.graph, skip)
        with quiet_loggers(no_warnings=True):  # torchao's and pytree's import chatter (edgest.quiet)
            from coremltools.optimize.torch.quantization.quantization_config import (
                LinearQuantizerConfig,
                QuantizationScheme,
            )
            from executorch.backends.apple.coreml.quantizer import CoreMLQuantizer
            from torchao.quantization.pt2e.quantize_pt2e import (
                convert_pt2e,
                prepare_pt2e,
            )

            cache_pattern_graphs()
            settings = {**CONFIG, "quantization_scheme": self.int8_scheme}  # as the details record them
            config = LinearQuantizerConfig.from_dict({"global_config": {
                **settings, "quantization_scheme": QuantizationScheme(self.int8_scheme),
                "activation_dtype": torch.quint8, "weight_dtype": torch.qint8}})
            module = program.module()
            rewrites = before_torchao_folding(module)  # prepare_pt2e folds every BN into its conv with torchao first
            loop = state_loop(module.graph, self.states)
            skipped = skipped_nodes(module.graph, skip)
            rules = float_rules(module.graph, skipped | set(loop))  # ExecuTorch's and LiteRT's, the same nodes
            kept = skipped | set(loop) | set().union(*rules.values())
            foldable = bn_after_convs(module)  # prepare_pt2e folds these BNs into their convs
            prepared = prepare_pt2e(module, _holding(CoreMLQuantizer(config), kept))
            with torch.no_grad():
                for xs in calibration.inputs:
                    prepared(*(torch.from_numpy(x) for x in xs))
            with no_qat_conv_bn_fold():  # post-training: nothing for the QAT conv+BN fold to find (45 s of patterns)
                converted = convert_pt2e(prepared)
            relabel_folded_convs(converted, foldable)  # a folded conv computes its BN's output: edgest debug reads it so
            new = torch.export.export(converted, tuple(example_inputs), strict=False)
        qdq = Counter(t.split(".")[1] for t in qdq_targets(new))
        floats = {rule: by_kind(module.graph, names, aten_name) for rule, names in rules.items()}
        details = {"quantizer": "CoreMLQuantizer (ExecuTorch, torchao PT2E)", "config": settings,
                   "activations": f"uint8 {self.int8_scheme}, static ranges: the calibration set's min and max",
                   "weights": f"int8 per-channel, {self.int8_scheme}",
                   "qdq_nodes": dict(sorted(qdq.items())), "calibration_inputs": len(calibration.inputs),
                   "kept_float": list(skip), **rewrites,
                   "float_output_ops": floats["output"], "float_token_ops": floats["tokens"],
                   "float_islands": floats["islands"],
                   **({"state_loop_float": loop} if loop else {})}
        return Quantized(_summary(qdq, skip, loop, floats), details, new)
