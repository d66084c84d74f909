"""int8 for the ExecuTorch target: PT2E with the XNNPACK quantizer, on the captured program (program stage).

``prepare_pt2e`` (``XNNPACKQuantizer`` with the symmetric config: int8 per-channel weights,
int8 activations) → run the calibration inputs → ``convert_pt2e`` → ``torch.export.export``
again. The result is a program with quantize/dequantize ops around the quantizable ops; the
target's usual lowering (XNNPACK partitioner) then fuses each Q/DQ pattern into an XNNPACK
int8 kernel. ``int8-weight`` uses XNNPACK's dynamic config instead (int8 weights,
activations quantised per inference; XNNPACK only does this for linear layers).

Before ``prepare_pt2e`` the graph is made quantisable (:mod:`edgest.quantize.prequant`:
constant-computed weights folded, BatchNorms torchao cannot fold as depthwise convs). Kept
float (:mod:`edgest.quantize.float_ops`): adds and cats on token sequences, the last layer
with the reshapes/means after it, adds/muls/cats with no int8 neighbour on one side and
spatial depthwise convs between float ops.
executorch 1.5's ``cat`` annotator ignores the quantizer's filter; :func:`_xnnpack_quantizer`
makes it obey, so a kept-float cat (and ``--quant-skip``) stays float.

Everything imports executorch/torchao lazily: the target imports this module only inside
:meth:`quantizer`.

To wire it into the target (``edgest_executorch/target.py``)::

    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")

    def quantizer(self, scheme: str) -> Quantizer | None:
        return quantizer_for(scheme, self.option("flavour"))   # from edgest_executorch.quantizer
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgest.errors import Unsupported
from edgest.quantization import (
    ProgramQuantizer,
    Quantized,
    Quantizer,
    check_skip,
    skipped_nodes,
    state_loop,
)
from edgest.quantize.float_ops import aten_name as _op
from edgest.quantize.float_ops import by_kind, float_rules
from edgest.quantize.marks import qdq_targets
from edgest.quantize.patterns import no_qat_conv_bn_fold
from edgest.quiet import IMPORT_CHATTER, quiet_loggers

if TYPE_CHECKING:
    import torch

    from edgest.data.calibration import CalibrationSet

SCHEMES = ("int8", "int8-weight")
#: smallest quantisation scale the observers may pick. XNNPACK's own config floors it at 2**-12,
#: so any tensor whose range is under ~0.03 quantises to zero: EMOv2's layer scale (gamma 1e-6)
#: makes whole stages that small at init, and the int8 program then output zeros (0 dB).
#: XNNPACK checks scale ratios, not absolute scales, so a floor this low is safe.
SCALE_EPS = 2.0**-46


def _config(dynamic: bool) -> Any:
    """XNNPACK's symmetric per-channel config with the scale floor lowered to :data:`SCALE_EPS`."""
    import dataclasses

    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)

    def floor(spec: Any) -> Any:
        ctr = getattr(spec, "observer_or_fake_quant_ctr", None)
        partial = getattr(ctr, "p", None)  # torchao's PartialWrapper around functools.partial
        if spec is None or spec.is_dynamic or partial is None or "eps" not in partial.keywords:
            return spec
        return dataclasses.replace(spec, observer_or_fake_quant_ctr=partial.func.with_args(**{**partial.keywords, "eps": SCALE_EPS}))

    return dataclasses.replace(config, input_activation=floor(config.input_activation),
                               output_activation=floor(config.output_activation), weight=floor(config.weight))


def quantizer_for(scheme: str, flavour: str = "xnnpack") -> Quantizer | None:
    """The quantizer for ``scheme`` on an ExecuTorch target of ``flavour``; None for schemes it lacks."""
    if scheme not in SCHEMES:
        return None
    if flavour != "xnnpack":
        raise Unsupported(
            f"target 'executorch' (flavour '{flavour}') has no {scheme} quantizer: the quantized ops run only "
            "inside the XNNPACK delegate; use flavour 'xnnpack'"
        )
    return XnnpackPT2EQuantizer(scheme)


def _quiet() -> contextlib.AbstractContextManager[None]:
    """torchao/executorch log optional-kernel and deprecation chatter on import and while converting."""
    return quiet_loggers(*IMPORT_CHATTER, "executorch", "torch.ao", no_warnings=True)


def _count(prepared: Any, converted: Any) -> dict[str, Any]:
    """Ops the quantizer annotated (XNNPACK runs them in int8), and the Q/DQ nodes ``convert`` left."""
    ops = Counter(
        _op(n) for n in prepared.graph.nodes
        if n.op == "call_function" and getattr(n.meta.get("quantization_annotation"), "_annotated", False)
    )
    qdq = qdq_targets(converted)
    return {
        "ops_annotated": sum(ops.values()),
        "ops_annotated_by_kind": dict(sorted(ops.items())),
        "quantize_nodes": sum(1 for t in qdq if ".quantize_" in t),
        "dequantize_nodes": sum(1 for t in qdq if ".dequantize_" in t),
        "per_channel_weights": sum(1 for t in qdq if "dequantize_per_channel" in t),
    }


def _xnnpack_quantizer(config: Any) -> Any:
    """``XNNPACKQuantizer().set_global(config)`` whose ``cat`` annotator obeys the filter function.

    executorch 1.5's ``_annotate_cat`` takes the filter and never calls it: every cat got int8
    inputs and output, the CLS-token cats of ViViT included (vivit_fe_tiny trained: 14.9 dB on
    random inputs with them, 20.5 dB without). Cats the filter rejects are marked annotated
    (without quantisation specs) while the patterns run, so the annotator leaves them alone.
    """
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation
    from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY

    class FilteredXNNPACKQuantizer(XNNPACKQuantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            held = [n for n in model.graph.nodes if n.op == "call_function" and n.target is torch.ops.aten.cat.default
                    and self.filter_fn is not None and not self.filter_fn(n) and Q_ANNOTATION_KEY not in n.meta]
            for node in held:
                node.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(_annotated=True)
            model = super().annotate(model)
            for node in held:
                del node.meta[Q_ANNOTATION_KEY]
            return model

    return FilteredXNNPACKQuantizer().set_global(config)


class XnnpackPT2EQuantizer(ProgramQuantizer):
    """PT2E with ``XNNPACKQuantizer``: static symmetric int8 (``int8``) or dynamic (``int8-weight``), per-channel weights."""

    def quantize_program(
        self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...],
        calibration: CalibrationSet, skip: Sequence[str],
    ) -> Quantized:
        import torch

        with _quiet():
            from executorch.backends.xnnpack.quantizer import xnnpack_quantizer_utils
            from torchao.quantization.pt2e.quantize_pt2e import (
                convert_pt2e,
                prepare_pt2e,
            )

            from edgest.quantize.patterns import fast_pattern_graphs
            from edgest.quantize.prequant import before_torchao_folding

            fast_pattern_graphs(xnnpack_quantizer_utils, "_get_aten_graph_module_for_pattern")  # conv+BN patterns
            dynamic = self.scheme == "int8-weight"
            quantizer = _xnnpack_quantizer(_config(dynamic))
            if skip:
                check_skip(program.graph, skip)
                # XNNPACKQuantizer.set_module_name(name, None) is "not supported yet" in executorch 1.5:
                # a filter keeps the named modules' nodes out of every pattern instead
            module = program.module()
            rewrites = before_torchao_folding(module, every_batch_norm=True)  # XNNPACK lowers no float BN between int8 ops
            skipped = skipped_nodes(module.graph, skip)
            loop = set() if dynamic else set(state_loop(module.graph, self.states))  # a step program's recurrence
            rules = float_rules(module.graph, skipped | loop, islands=not dynamic)  # never names those
            last, tokens, islands = rules["output"], rules["tokens"], rules["islands"]
            kept = last | tokens | skipped | islands | loop
            quantizer.set_filter_function(lambda node: node.name not in kept)
            prepared = prepare_pt2e(module, quantizer)
            counts = _count(prepared, prepared)
            with torch.no_grad():
                for xs in calibration.inputs:
                    prepared(*(torch.from_numpy(x) for x in xs))
            with no_qat_conv_bn_fold():
                converted = convert_pt2e(prepared)
            new = torch.export.export(converted, tuple(example_inputs), strict=False)
        counts.update({k: v for k, v in _count(prepared, new).items() if not k.startswith("ops_")})
        details = {
            "quantizer": "XNNPACKQuantizer (torchao PT2E)", "symmetric": True, "per_channel": True,
            "activations": "int8, quantised per inference (dynamic)" if dynamic
            else "int8 per-tensor affine, static ranges from calibration (histogram observer)",
            "weights": "int8 per-channel symmetric", "scale_floor": SCALE_EPS,
            "float_token_ops": by_kind(module.graph, tokens), "float_islands": by_kind(module.graph, islands),
            **rewrites,
            "float_output_ops": sorted(_op(n) for n in module.graph.nodes if n.name in last), **counts,
            **({"state_loop_float": [n.name for n in module.graph.nodes if n.name in loop]} if loop else {}),
        }
        kinds = ", ".join(f"{k} ×{v}" for k, v in counts["ops_annotated_by_kind"].items())
        mode = "dynamic (int8 weights, activations at run time)" if dynamic else "static"
        summary = f"XNNPACK PT2E per-channel int8, {mode}: {counts['ops_annotated']} ops annotated ({kinds or 'none'})"
        if skip:
            summary += f"; kept float: {', '.join(skip)}"
        if last:
            summary += f"; output ops kept float ({', '.join(details['float_output_ops'])})"
        if bns := rewrites["batch_norms_as_depthwise_conv"]:
            summary += f"; {bns} standalone BatchNorm as int8 depthwise conv"
        if tokens:
            summary += f"; {len(tokens)} adds/cats on token sequences kept float"
        if loop:
            summary += f"; state loop float: {', '.join(details['state_loop_float'])}"
        if islands:
            kept_kinds = ", ".join(f"{k} ×{v}" for k, v in details["float_islands"].items())
            summary += f"; kept float next to float ops: {kept_kinds}"
        return Quantized(summary, details, new)
