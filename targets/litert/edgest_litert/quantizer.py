"""int8 for the LiteRT target: PT2E with litert-torch's own ``PT2EQuantizer`` (program stage).

Why PT2E and not ai-edge-quantizer: PT2E is litert-torch's documented path for static int8 of
a PyTorch model; it calibrates in PyTorch on edgest's calibration inputs, keeps torch module
names (so ``--quant-skip layer4.1`` means what it means on every other target), and its
result is a program, whose accuracy delta edgest measures in eager like any pass.
ai-edge-quantizer works on the ``.tflite`` after conversion, where module names are gone
(only TFLite tensor names are left to match), and calibrates through the interpreter.

``int8``: ``get_symmetric_quantization_config(is_per_channel=True)``: int8 per-channel
symmetric weights, int8 per-tensor activations from a histogram observer over the calibration
inputs. ``int8-weight``: the same quantizer's dynamic config (int8 weights of linear and conv
layers, activations quantised at run time by TFLite's dynamic-range kernels).
prepare → calibrate → ``convert_pt2e(fold_quantize=False)`` (as litert-torch's own tests do)
→ ``torch.export`` again; the target's lowering sees the Q/DQ ops and converts with the
matching ``QuantConfig`` (:mod:`edgest_litert.convert`).

``int8`` keeps float what :mod:`edgest.quantize.float_ops` names, as the ExecuTorch target does: the
output layer, adds and cats on token sequences, and adds, muls, cats and spatial depthwise convs between
float ops (trained emov2_tiny_video: 19.4 dB / 91.7 % top-1 agreement without, 23.7 dB / 97.7 % with).

``--quant-skip NAME``: the nodes traced inside module ``NAME`` are marked "annotated, no
quantisation" before the quantizer's patterns run, so no pattern takes them and they stay float
(the quantizer's ``set_module_name`` cannot take None, and its name filter parses
``nn_module_stack`` keys in a form torch.export no longer writes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from edgest.quantization import (
    ProgramQuantizer,
    Quantized,
    Quantizer,
    before_torchao_folding,
    check_skip,
    in_modules,
    skipped_nodes,
    state_loop,
)
from edgest.quantize.float_ops import by_kind, float_rules, rules_note
from edgest.quantize.patterns import no_qat_conv_bn_fold

if TYPE_CHECKING:
    import torch

    from edgest.data.calibration import CalibrationSet

SCHEMES = ("int8", "int8-weight")
_ANNOTATION = "quantization_annotation"


def quantizer_for(scheme: str) -> Quantizer | None:
    """The quantizer for ``scheme``; None for schemes LiteRT's PT2E flow does not offer."""
    return LiteRTPT2EQuantizer(scheme) if scheme in SCHEMES else None


def _pt2e_quantizer(dynamic: bool, skip: Sequence[str], names: Collection[str] = ()) -> Any:
    """litert-torch's ``PT2EQuantizer`` (per-channel symmetric config) that leaves the ``skip`` modules and the
    nodes ``names`` (a step program's state loop) float."""
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    class SkippingPT2EQuantizer(PT2EQuantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            held = [n for n in model.graph.nodes if n.op == "call_function" and (n.name in names or in_modules(n, skip))
                    and _ANNOTATION not in n.meta]
            for node in held:  # every pattern skips a node that is already annotated
                node.meta[_ANNOTATION] = QuantizationAnnotation(_annotated=True)
            model = super().annotate(model)
            for node in held:
                del node.meta[_ANNOTATION]
            return model

    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
    return SkippingPT2EQuantizer().set_global(config)


def drop_eval_dropouts(module: torch.fx.GraphModule) -> int:
    """Remove inference-mode dropouts (the identity) from ``module`` in place; returns how many.

    PT2E leaves a dropout unannotated, so the linear after it observes its input on its own:
    ``q(x, s1) → dropout → q(x, s2)`` with two scales. litert-torch's converter drops the
    dropout and the requantisation with it, but keeps the bias the linear was given for ``s2``:
    the logits of a trained squeezetime_tiny came out at 12.9 dB (34 dB in eager PT2E) until
    the dropout before its classifier was removed here.
    """
    import torch

    aten = torch.ops.aten
    kinds = (aten.dropout.default, aten.feature_dropout.default, aten.alpha_dropout.default, aten.feature_alpha_dropout.default)
    done = 0
    for node in list(module.graph.nodes):
        if node.op == "call_function" and node.target in kinds and not node.args[2]:
            node.replace_all_uses_with(node.args[0])
            module.graph.erase_node(node)
            done += 1
    if done:
        module.graph.lint()
        module.recompile()
    return done


def _op(node: Any) -> str:
    return str(getattr(node.target, "__name__", node.target)).split(".")[0]


def _annotated(prepared: Any) -> Counter[str]:
    return Counter(_op(n) for n in prepared.graph.nodes
                   if n.op == "call_function" and getattr(n.meta.get(_ANNOTATION), "_annotated", False))


class LiteRTPT2EQuantizer(ProgramQuantizer):
    """PT2E with litert-torch's ``PT2EQuantizer``: static int8 (``int8``) or dynamic-range (``int8-weight``)."""

    def quantize_program(
        self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...],
        calibration: CalibrationSet, skip: Sequence[str],
    ) -> Quantized:
        import torch

        from edgest_litert.quiet import quiet

        dynamic = self.scheme == "int8-weight"
        check_skip(program.graph, skip)
        with quiet():
            from torchao.quantization.pt2e.quantize_pt2e import (
                convert_pt2e,
                prepare_pt2e,
            )

            module = program.module()
            dropouts = drop_eval_dropouts(module)
            rewrites = before_torchao_folding(module)  # prepare_pt2e folds every BN into its conv with torchao first
            loop = [] if dynamic else state_loop(module.graph, self.states)  # a step program's recurrence
            skipped = skipped_nodes(module.graph, skip)
            rules = {} if dynamic else float_rules(module.graph, skipped | set(loop))
            kept = set(loop).union(*rules.values())
            prepared = prepare_pt2e(module, _pt2e_quantizer(dynamic, skip, kept))
            ops = _annotated(prepared)
            # the weight observers record the weights on a forward pass: the dynamic scheme needs one too
            with torch.no_grad():
                for xs in calibration.inputs[:1] if dynamic else calibration.inputs:
                    prepared(*(torch.from_numpy(x) for x in xs))
            with no_qat_conv_bn_fold():
                converted = convert_pt2e(prepared, fold_quantize=False)
            new = torch.export.export(converted, tuple(example_inputs), strict=False)
        kinds = ", ".join(f"{k} ×{v}" for k, v in sorted(ops.items()))
        mode = "dynamic range (int8 weights, activations at run time)" if dynamic else "static"
        summary = f"litert-torch PT2E per-channel int8, {mode}: {sum(ops.values())} ops annotated ({kinds or 'none'})"
        if skip:
            summary += f"; kept float: {', '.join(skip)}"
        if loop:
            summary += f"; state loop float: {', '.join(loop)}"
        floats = {rule: by_kind(module.graph, names, _op) for rule, names in rules.items()}
        summary += rules_note(floats)
        details = {
            "quantizer": "litert_torch PT2EQuantizer (torchao PT2E)", "symmetric": True, "per_channel": True,
            "weights": "int8 per-channel symmetric",
            "activations": "int8, quantised per inference (dynamic range)" if dynamic
            else "int8 per-tensor affine, static ranges from calibration (histogram observer)",
            "calibration_inputs_used": 1 if dynamic else len(calibration), "ops_annotated": sum(ops.values()), "ops_annotated_by_kind": dict(sorted(ops.items())),
            "kept_float": list(skip), "inference_dropouts_removed": dropouts,
            **rewrites,
            **({"state_loop_float": loop} if loop else {}),
            **({"float_output_ops": floats["output"], "float_token_ops": floats["tokens"],
                "float_islands": floats["islands"]} if floats else {}),
        }
        return Quantized(summary, details, new)
