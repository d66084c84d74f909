"""Where edgest's ONNX int8 differs from ``quantize_static``'s defaults, and why (measured on vivit_fa_tiny).

``quantize_static`` with every op type quantised gave 6.8 dB SQNR on ViViT; each rule below
removes one cause (the numbers are SQNR vs the float artifact with the other two rules on):

* **LayerNormalization stays float, and so do Adds on 3-D (N, L, D) tensors** (7.0 dB without
  the adds rule, 7.5 dB without the LayerNorm rule, 33.7 dB with both). The residual stream
  of a transformer gets one per-tensor uint8 scale, set by the patch tokens (range ~5, step
  0.02); the CLS token the head reads has a spread of 0.02-0.05, one or two steps, and the next
  LayerNorm scales that rounding up to unit variance. ORT quantises LayerNorm's *input* and its
  Q/DQ pair is shared by every reader of the tensor, residual Add included, so keeping only the
  Adds float (the ExecuTorch rule) changes nothing here. ORT has no int8 LayerNorm kernel on
  CPU: it ran in float between a DQ and a Q anyway.
* **Graph outputs stay float** (19.2 dB with it quantised): ORT puts a Q/DQ pair on the output
  of Gemm/MatMul/Conv even when it is the model's output, i.e. it rounds the logits to 256
  levels set by the calibration range. Nothing reads them as integers.
* **A ``--quant-skip`` node reads float inputs** (:func:`float_inputs`): ORT's
  ``WeightBiasQuantization`` graph optimisation (level basic and up, at session creation)
  takes "DQ → Conv/Gemm with float weights → [Relu/Clip] → Q" for an unfinished QDQ unit and
  quantises the float weights per-tensor itself, so a skipped layer whose input and output
  neighbours are quantised came back int8 (MLP with an outlier layer after a ReLU: 6.0 dB with
  the skip, 18.7 dB with optimisations off). Without the DQ in front the pattern is gone.

Works on ``onnx`` protos; the caller imports onnx.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

#: activations ORT's quantizer may fold into the Q in front of a node (``QDQRemovableActivation``)
_FOLDED_ACTIVATIONS = ("Relu", "Clip")


def _ranks(graph: Any) -> dict[str, int]:
    ranks = {t.name: len(t.dims) for t in graph.initializer}
    for vi in (*graph.value_info, *graph.input, *graph.output):
        if vi.type.tensor_type.HasField("shape"):
            ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
    return ranks


def float_by_rule(model: Any) -> dict[str, list[str]]:
    """Nodes edgest keeps float whatever the user skips: ``layer_norms`` and ``token_adds`` (see the module doc)."""
    import onnx

    graph = model.graph
    ranks = _ranks(graph)
    if not any(n.op_type == "Add" and n.output[0] in ranks for n in graph.node):
        try:  # no shapes (quant_pre_process was skipped): infer them here
            ranks = _ranks(onnx.shape_inference.infer_shapes(model).graph)
        except Exception:  # noqa: BLE001, S110 - without shapes the token-add rule finds nothing
            pass
    return {
        "layer_norms": [n.name for n in graph.node if n.op_type == "LayerNormalization"],
        "token_adds": [n.name for n in graph.node if n.op_type == "Add" and ranks.get(n.output[0]) == 3],
    }


def _producers(graph: Any) -> dict[str, Any]:
    return {o: n for n in graph.node for o in n.output}


def float_graph_outputs(model: Any) -> int:
    """Remove the Q → DQ pair ORT put on graph outputs (the producer writes the output again); returns how many."""
    graph = model.graph
    producer = _producers(graph)
    readers: dict[str, int] = {}
    for n in graph.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    drop = []
    for out in graph.output:
        dq = producer.get(out.name)
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if q is None or q.op_type != "QuantizeLinear" or readers.get(q.output[0]) != 1 or readers.get(q.input[0]) != 1:
            continue
        src = producer.get(q.input[0])
        if src is None:
            continue
        outputs = list(src.output)
        src.output[outputs.index(q.input[0])] = out.name
        drop += [q, dq]
    for n in drop:
        graph.node.remove(n)
    used = {i for n in graph.node for i in n.input}
    params = {i for n in drop for i in n.input[1:]} - used  # the pairs' scales and zero points, now unread
    for t in [t for t in graph.initializer if t.name in params]:
        graph.initializer.remove(t)
    return len(drop) // 2


def float_inputs(model: Any, before: Any, names: Collection[str]) -> int:
    """Nodes ``names`` read the float tensor instead of ``DQ(Q(tensor))``; returns how many inputs changed.

    ``before`` is the graph that was quantised. Where the quantizer folded a Relu/Clip into the Q
    (it then renames the producer's output to the activation's), the activation is re-created on
    the float path from its copy in ``before``.
    """
    graph = model.graph
    producer, producer_before = _producers(graph), _producers(before)
    changed, recreated = 0, set()
    for node in list(graph.node):
        if node.name not in names:
            continue
        for k, name in enumerate(node.input):
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is None or q.op_type != "QuantizeLinear":
                continue
            tensor = q.input[0]
            was, now = producer_before.get(tensor), producer.get(tensor)
            if was is not None and (now is None or now.name != was.name):  # the activation making `tensor` was folded
                if was.op_type not in _FOLDED_ACTIVATIONS:
                    continue
                if tensor in recreated:
                    node.input[k] = f"{tensor}_float"
                    changed += 1
                    continue
                recreated.add(tensor)
                act = type(was)()
                act.CopyFrom(was)
                act.name, act.input[0], act.output[0] = f"{was.name}_float", tensor, f"{tensor}_float"
                # right before the node: after Q reads `tensor`, so the graph stays in topological order
                graph.node.insert(list(graph.node).index(node), act)
                tensor = act.output[0]
            node.input[k] = tensor
            changed += 1
    return changed
