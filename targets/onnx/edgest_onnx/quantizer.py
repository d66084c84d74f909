"""ONNX Runtime quantisation of the lowered ``.onnx`` (artifact stage).

* ``int8``: static QDQ (``quantize_static``, ``QuantFormat.QDQ``): uint8 activations with
  ranges from calibration (MinMax), int8 per-channel weights. uint8 activations because int8
  ones (S8S8) were up to 8x slower than U8S8 in ONNX Runtime 1.32 on x86 (emov2_tiny_video:
  11.8 ms vs 1.4 ms).
* ``int8-weight``: dynamic (``quantize_dynamic``): int8 per-channel weights, activations
  quantised at run time by ``DynamicQuantizeLinear``. Smaller file; on CPU the resulting
  ``ConvInteger`` is slower than a float Conv, so this is for size, not speed.

``reduce_range`` (7-bit weights) is chosen from the CPU the artifact is built and checked on:
x86 without VNNI multiplies u8×s8 with ``VPMADDUBSW``, which adds pairs of products into
int16 and can saturate; VNNI / AMX (and ARM) accumulate in int32, so full 8-bit weights are
kept. The choice and its reason are recorded in the artifact's details.

``onnxruntime.quantization.quant_pre_process`` (shape inference, basic graph optimisation)
runs first; if it fails the original graph is quantised and the details say so.

``int8`` keeps LayerNorms, Adds on token sequences, the residual stream into each LayerNorm,
the logits, Concats that are split again and Softmaxes float, and gives every float node (by rule or
``--quant-skip``) float inputs: :mod:`edgest_onnx.qdq_rules` says why and what it measured. The
details count the layers ONNX Runtime will still run in float (``float_layers``). ``--quant-skip``
finds a module's nodes by the module path the exporter recorded (:mod:`edgest_onnx.scopes`).
A ``--streaming`` step program also keeps its state loop float (:func:`state_loop_nodes`, the rule of
:mod:`edgest.quantize.state`): rounding there is fed back and summed at every step.
Everything imports onnx/onnxruntime lazily.
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput
from edgest.host import INT32_DOT_FEATURES, int8_sums_in_int32, isa_features
from edgest.quantization import ArtifactQuantizer, Quantized, loop_of
from edgest_onnx import qdq_rules, scopes

if TYPE_CHECKING:
    from edgest.data.calibration import CalibrationSet

_QDQ = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
#: what the int8 summary calls each rule's nodes (:func:`edgest_onnx.qdq_rules.float_by_rule`)
_KEPT = {"layer_norms": "LayerNorms", "token_adds": "token-sequence Adds", "residual_stream": "residual-stream nodes",
         "logits": "nodes after the last layer", "split_concats": "nodes of Concats split again", "softmaxes": "Softmaxes"}


def choose_settings(flags: Iterable[str] | None = None, machine: str | None = None) -> dict[str, Any]:
    """Quantisation settings for this host (or for ``flags``/``machine``), with the reason for ``reduce_range``."""
    machine = (machine or platform.machine()).lower()
    flags = set(isa_features() or ()) if flags is None else set(flags)
    in_int32, why = int8_sums_in_int32(tuple(sorted(flags)), machine)
    reduce_range = not in_int32
    if reduce_range:
        why += "; 7-bit weights avoid it" if flags else ": 7-bit weights in case the CPU has no VNNI"
    vnni = sorted(f for f in INT32_DOT_FEATURES if f in flags)
    return {
        "activation_type": "uint8", "weight_type": "int8", "per_channel": True, "reduce_range": reduce_range,
        "reduce_range_reason": why, "host_int8_flags": vnni or ([f for f in ("avx2", "avx512f") if f in flags]),
        "machine": machine,
        "chosen_for": "the CPU that built and checked the artifact; for a CPU without VNNI, rebuild there (reduce_range=True)",
    }


class OrtQuantizer(ArtifactQuantizer):
    """ONNX Runtime static QDQ (``int8``) or dynamic (``int8-weight``) quantisation of ``model.onnx``."""

    def __init__(self, scheme: str, settings: dict[str, Any] | None = None) -> None:
        super().__init__(scheme)
        self.settings = settings or choose_settings()

    def quantize_artifact(self, src: Path, dst: Path, calibration: CalibrationSet, skip: Sequence[str]) -> Quantized:
        import onnx
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

        s = self.settings
        with tempfile.TemporaryDirectory(prefix="edgest-ortq-") as tmp, _quiet():
            model_in, pre = _pre_process(src, Path(tmp) / "pre.onnx")
            model = onnx.load(str(model_in), load_external_data=False)
            graph = model.graph
            modules = scopes.modules_of(onnx.load(str(src), load_external_data=False))
            exclude = _nodes_to_exclude(graph, skip, modules)
            rules = qdq_rules.float_by_rule(model) if self.scheme == "int8" else {}
            loop = [n for n in state_loop_nodes(graph, self.states) if n not in exclude] if self.scheme == "int8" else []
            by_rule = list(dict.fromkeys([*(n for names in rules.values() for n in names if n not in exclude), *loop]))
            common = {"per_channel": s["per_channel"], "reduce_range": s["reduce_range"], "weight_type": QuantType.QInt8,
                      "nodes_to_exclude": (exclude + by_rule) or None}
            if self.scheme == "int8":
                names = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
                quantize_static(str(model_in), str(dst), _reader(names, calibration.inputs), quant_format=QuantFormat.QDQ,
                                activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax, **common)
            else:
                quantize_dynamic(str(model_in), str(dst), **common)
        out = onnx.load(str(dst), load_external_data=False)
        fixes: dict[str, int] = {}
        if self.scheme == "int8":
            concats = set(rules["split_concats"]) - set(rules["residual_stream"])  # they read their inputs int8
            fixes = {"float_graph_outputs": qdq_rules.float_graph_outputs(out),
                     "skipped_float_inputs": qdq_rules.float_inputs(out, graph, set(exclude)),
                     "rule_float_inputs": qdq_rules.float_inputs(out, graph, set(by_rule) - concats)}
            fixes["unread_qdq_removed"] = qdq_rules.drop_unread_qdq(out)
            if any(fixes.values()):
                onnx.save(out, str(dst))
        counts = _count(graph, out.graph)
        details = {**s, "format": "QDQ" if self.scheme == "int8" else "dynamic",
                   "calibrate_method": "MinMax" if self.scheme == "int8" else "none (dynamic)",
                   "pre_process": pre, **counts, "nodes_excluded": len(exclude)}
        if self.scheme == "int8":
            layers = [n.name for n in out.graph.node if n.op_type in qdq_rules.LAYERS]
            float_layers = qdq_rules.float_layers(out)
            details.update(activation_type="uint8", **{f"float_{k}": len(v) for k, v in rules.items()}, **fixes,
                           layers=len(layers), float_layers=len(float_layers), float_layer_names=float_layers[:20],
                           float_rules="LayerNorms, Adds on 3-D token sequences, the residual stream into each "
                                       "LayerNorm, the logits, split Concats and Softmaxes stay float, and float nodes "
                                       "read float inputs (a per-tensor uint8 scale rounds a small CLS token or channel "
                                       "away; QLinearSoftmax is slow)")
            summary = (f"int8 static QDQ (onnxruntime, u8 activations, s8 per-channel weights, "
                       f"reduce_range={s['reduce_range']} because {s['reduce_range_reason'].split(':')[0]}), "
                       f"{counts['nodes_quantized']} of {counts['nodes_float_ops']} nodes quantized, "
                       f"{len(layers) - len(float_layers)} of {len(layers)} layers int8")
            kept = [f"{len(v)} {label}" for key, label in _KEPT.items() if (v := rules[key])]
            if loop:
                details["state_loop_float"] = loop
                kept.append(f"{len(loop)} nodes of the state loop")
            if kept:
                summary += f"; kept float: {', '.join(kept)}"
        else:
            details["activation_type"] = "uint8 at run time (DynamicQuantizeLinear)"
            details["note"] = "ConvInteger is slower than float Conv on CPU: int8-weight saves size, not time"
            summary = (f"int8 weight-only dynamic (onnxruntime, s8 per-channel weights, reduce_range={s['reduce_range']}), "
                       f"{counts['nodes_quantized']} of {counts['nodes_float_ops']} nodes quantized")
        if skip:
            summary += f", {len(exclude)} nodes kept float ({', '.join(skip)})"
        return Quantized(summary, details)


def state_loop_nodes(graph: Any, states: int) -> list[str]:
    """Names of the nodes of an ONNX step program's ``graph`` that stay float (:func:`edgest.quantize.loop_of`).

    ``states``: how many trailing graph inputs are state, fed back from graph outputs 1.. in order; empty
    for a whole-input graph (``states`` 0, or inputs and outputs that do not have that shape).
    """
    inits = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in inits]
    if states <= 0 or len(inputs) <= states or len(graph.output) != states + 1:
        return []
    producer = {out: n.name for n in graph.node for out in n.output}
    nodes = [(n.name, [producer.get(i, i) for i in n.input if i and i not in inits]) for n in graph.node]
    return loop_of(nodes, inputs[-states:], [producer.get(o.name, o.name) for o in graph.output[1:]])


def _reader(names: list[str], inputs: list[tuple[Any, ...]]) -> Any:
    """A ``CalibrationDataReader`` over edgest's calibration inputs."""
    from onnxruntime.quantization import CalibrationDataReader

    if len(names) != len(inputs[0]):
        raise BadInput(f"the ONNX model takes {len(names)} inputs; the calibration inputs have {len(inputs[0])}")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(inputs)

        def get_next(self) -> dict[str, Any] | None:
            xs = next(self._it, None)
            return None if xs is None else dict(zip(names, xs))

    return Reader()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization logs on the root logger (e.g. per-channel axis notes for BatchNorm) and prints."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _pre_process(src: Path, dst: Path) -> tuple[Path, str]:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst))
        return dst, "applied"
    except Exception as exc:  # noqa: BLE001 - pre-processing only helps; quantise the graph as it is
        return src, f"skipped: {(str(exc).splitlines() or [type(exc).__name__])[0][:120]}"


def _nodes_to_exclude(graph: Any, skip: Sequence[str], modules: dict[str, str] | None = None) -> list[str]:
    """Nodes of the modules in ``skip``, found three ways (any one will do).

    * the module path the exporter recorded for the node (``modules``: node name → module, see
      :mod:`edgest_onnx.scopes`): ``blocks.0.mlp.fc1`` finds its MatMul although onnxsim renamed
      the folded, transposed weight to ``val_58``; ``blocks.0`` finds the whole block;
    * the node name starts with the module name;
    * a weight named ``MODULE.*`` feeds the node (onnxsim keeps the names of weights it did not fold).
    """
    if not skip:
        return []
    modules = modules or {}
    inits = {t.name for t in graph.initializer}
    out: list[str] = []
    for name in skip:
        prefix = name.rstrip(".") + "."
        hits = [n.name for n in graph.node
                if n.name.startswith(name) or scopes.in_module(scopes.module_of(n.name, modules), name)
                or any(i in inits and (i == name or i.startswith(prefix)) for i in n.input)]
        if not hits:
            raise BadInput(
                f"--quant-skip '{name}' matches no node of the ONNX graph; name a module whose layers are in it"
                + (f", e.g. {', '.join(ex)}" if (ex := _examples(graph, modules, inits)) else "")
            )
        out += [h for h in hits if h not in out]
    return out


def _examples(graph: Any, modules: dict[str, str], inits: set[str]) -> list[str]:
    """A few module names a user could skip: those of weighted layers, else weight-name prefixes."""
    layers = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
    named = {m for n in graph.node if n.op_type in layers and (m := scopes.module_of(n.name, modules))}
    return sorted(named or {i.rsplit(".", 1)[0] for i in inits if "." in i})[:4]


def _count(before: Any, after: Any) -> dict[str, int]:
    """Ops of the float graph, how many of them read dequantised or integer inputs after, and the Q/DQ nodes added."""
    ops = Counter(n.op_type for n in after.node)
    dq_out = {o for n in after.node if n.op_type == "DequantizeLinear" for o in n.output}
    integer = {"ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul"}
    quantized = [n for n in after.node if n.op_type in integer or (n.op_type not in _QDQ and any(i in dq_out for i in n.input))]
    return {
        "nodes_quantized": len(quantized),
        "nodes_float_ops": sum(1 for n in before.node if n.op_type not in _QDQ),
        "quantize_nodes": ops["QuantizeLinear"] + ops["DynamicQuantizeLinear"],
        "dequantize_nodes": ops["DequantizeLinear"],
    }
