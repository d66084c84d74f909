"""Where edgest's ONNX int8 differs from ``quantize_static``'s defaults, and why.

``quantize_static`` with every op type quantised gave vivit_fa_tiny 6.8 dB SQNR at random init.
The rules were found one at a time, by quantising one op type or one node and leaving the rest
float. Figures "A / B dB" are SQNR on the check's random inputs / on its 256 labelled clips with
the trained checkpoints of ``edgest train``, each with the rules above it in place:

* **LayerNormalization stays float, and so do Adds on 3-D (N, L, D) tensors** (7.0 dB without
  the adds rule, 7.5 dB without the LayerNorm rule, 33.7 dB with both, random init). The
  residual stream of a transformer gets one per-tensor uint8 scale, set by the patch tokens
  (range ~5, step 0.02); the CLS token the head reads has a spread of 0.02-0.05, one or two
  steps, and the next LayerNorm scales that rounding up to unit variance. ORT has no int8
  LayerNorm kernel on CPU: it ran in float between a DQ and a Q anyway.
* **The residual stream stays float, and what writes into it writes float**
  (:func:`residual_stream`): the Adds, Concats and layout ops between a LayerNorm and the layers
  that feed it, at any rank (EMOv2's NCHW stream reaches its channels-last LayerNorm through a
  Transpose), and every float node reads float inputs (:func:`float_inputs`), so a layer's
  output is not rounded to its uint8 scale on the way in. The first rules alone left the token
  Adds reading DQ(Q(branch output)) and the LayerNorms DQ(Q(stream)): vivit_fa_tiny 14.4 / 27.2
  dB, 23.3 / 41.2 dB with this rule; vivit_fe_tiny 17.1 / 25.8 -> 23.7 / 36.2 dB; emov2_tiny_video
  21.9 -> 25.1 dB on clips (logits float). A Gemm or MatMul writing into the stream stays int8 (ORT fuses DQ -> Gemm into QGemm with a float
  output, DQ -> MatMul into MatMulIntegerToFloat); a Conv has no int8 kernel with a float output
  on ORT's CPU provider, so a Conv writing into the stream runs float (ViViT's patch embedding,
  5 of EMOv2's 23 convs; with their outputs int8 EMOv2 lost 4-5 dB on clips).
* **The logits stay float** (:func:`logits`, :func:`float_graph_outputs`): ORT puts a Q/DQ pair
  on the output of Gemm/MatMul/Conv, rounding the logits to 256 levels set by the calibration
  range (vivit_fa_tiny 19.2 dB with the graph output quantised). EMOv2 averages per-frame
  logits over time (Gemm -> Reshape -> ReduceMean), so the rounding sat before the mean: the
  Reshape and ReduceMean after the last layer stay float too (top-1 agreement 88 -> 94 %; its
  logits for opposite motions are near-ties, so rounding them flips the arg-max).
* **A Concat that is split again is not requantised** (:func:`split_concats`): EMOv2's
  attention concatenates the qk conv and the GELU'd v conv, then slices q, k and v out of the
  result; one uint8 scale for the union rounded each part at the widest part's step (that
  Concat alone: 26 dB on clips). The Concat reads its inputs at their own scales and writes
  float; the slices and layout ops after it stay float, and each part's reader quantises it.
  (Splitting the output of ViViT's qkv Gemm the same way did not help: more top-1 flips.)
* **Softmax stays float**: ORT's QLinearSoftmax took 4x the time of a float Softmax (profile of
  vivit_fa_tiny int8: 0.62 vs 0.16 ms per run, a quarter of the model) and rounds the scores
  before the exponential. With it float the scores MatMul runs as MatMulIntegerToFloat and the
  attention @ V MatMul quantises the probabilities: vivit_fa_tiny 23.3 -> 27.1 dB on random
  inputs, vivit_fe_tiny 23.7 -> 25.1 dB, clips unchanged (41.5, 35.3 dB), p50 1.41 -> 1.12 ms
  and 1.33 -> 1.05 ms (fp32: 1.23, 1.17 ms).
* **A ``--quant-skip`` node reads float inputs** (:func:`float_inputs`): ORT's
  ``WeightBiasQuantization`` graph optimisation (level basic and up, at session creation)
  takes "DQ -> Conv/Gemm with float weights -> [Relu/Clip] -> Q" for an unfinished QDQ unit and
  quantises the float weights per-tensor itself, so a skipped layer whose input and output
  neighbours are quantised came back int8 (MLP with an outlier layer after a ReLU: 6.0 dB with
  the skip, 18.7 dB with optimisations off). Without the DQ in front the pattern is gone.

Tried and not taken (EMOv2 / ViViT, trained): Percentile calibration (+1 dB on EMOv2; Entropy gave MinMax's ranges), symmetric activations
(EMOv2 22.6 -> 5.8 dB on random inputs), 128 calibration clips instead of 32 (wider ranges:
22.6 -> 15.8 dB on random inputs).

Works on ``onnx`` protos; the caller imports onnx.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

#: activations ORT's quantizer may fold into the Q in front of a node (``QDQRemovableActivation``)
_FOLDED_ACTIVATIONS = ("Relu", "Clip")
#: ops that only move or reshape values
LAYOUT_OPS = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity"})
#: ops a residual stream flows through between the layers that write it and a LayerNorm
_STREAM_OPS = LAYOUT_OPS | {"Add", "Concat"}
#: ops between the last layer and the graph outputs that keep the logits' values (a temporal mean, a reshape)
_LOGIT_OPS = LAYOUT_OPS | {"ReduceMean", "Gather", "Slice"}
#: ops that take a part of a tensor
_PART_OPS = frozenset({"Slice", "Split", "Gather"})
#: layers with weights, and those ORT's CPU provider cannot run int8 when their output is float
LAYERS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
_NEED_Q_OUTPUT = frozenset({"Conv", "ConvTranspose"})


def _ranks(graph: Any) -> dict[str, int]:
    ranks = {t.name: len(t.dims) for t in graph.initializer}
    for vi in (*graph.value_info, *graph.input, *graph.output):
        if vi.type.tensor_type.HasField("shape"):
            ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
    return ranks


def float_by_rule(model: Any) -> dict[str, list[str]]:
    """Nodes edgest keeps float whatever the user skips, by rule (see the module doc).

    ``layer_norms``, ``token_adds``, ``residual_stream``, ``logits``, ``split_concats`` (the
    Concats, then the layout and slicing nodes after them) and ``softmaxes``; a node may be in several.
    """
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
        "residual_stream": residual_stream(graph),
        "logits": logits(graph),
        "split_concats": split_concats(graph),
        "softmaxes": [n.name for n in graph.node if n.op_type == "Softmax"],
    }


def _walk_back(graph: Any, tensors: list[str], through: frozenset[str], all_inputs: bool) -> list[str]:
    """Nodes of a ``through`` type met walking back from ``tensors`` to their producers, in the order met;
    a node's first input is followed, or every input of a non-layout node when ``all_inputs``."""
    producer, seen, todo = _producers(graph), [], list(tensors)
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.op_type not in through or node.name in seen:
            continue
        seen.append(node.name)
        todo += list(node.input) if all_inputs and node.op_type not in LAYOUT_OPS else [node.input[0]]
    return seen


def residual_stream(graph: Any) -> list[str]:
    """Adds, Concats and layout ops on the way into a LayerNorm, back to the layers that write the stream."""
    return _walk_back(graph, [n.input[0] for n in graph.node if n.op_type == "LayerNormalization"], _STREAM_OPS, True)


def logits(graph: Any) -> list[str]:
    """The layout, slicing and mean ops between the last layer and each graph output."""
    return _walk_back(graph, [o.name for o in graph.output], _LOGIT_OPS, False)


def split_concats(graph: Any) -> list[str]:
    """Concats whose output (through layout ops) is cut into parts again, then those layout ops and part-takers."""
    producer, inits = _producers(graph), {t.name for t in graph.initializer}
    readers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    concats, rest = [], []
    for tensor, nodes in readers.items():
        parts = [n.name for n in nodes if n.op_type in _PART_OPS and n.input[0] == tensor]
        if tensor in inits or not (len(parts) >= 2 or any(n.op_type == "Split" for n in nodes)):
            continue
        chain, node = [], producer.get(tensor)
        while node is not None and node.op_type in LAYOUT_OPS:
            chain.append(node.name)
            node = producer.get(node.input[0])
        if node is not None and node.op_type == "Concat":
            concats.append(node.name)
            rest += chain + parts
    return list(dict.fromkeys(concats + rest))


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


def drop_unread_qdq(model: Any) -> int:
    """Remove Q and DQ nodes nothing reads any more (after :func:`float_inputs`), and their parameters; returns how many."""
    graph = model.graph
    dropped: list[Any] = []
    while True:
        read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.output[0] not in read]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
        dropped += dead
    read = {i for n in graph.node for i in n.input}
    unread = {i for n in dropped for i in n.input} - read
    for t in [t for t in graph.initializer if t.name in unread]:
        graph.initializer.remove(t)
    return len(dropped)


def float_layers(model: Any) -> list[str]:
    """Layers (Conv, Gemm, MatMul) of a QDQ graph that ONNX Runtime's CPU provider will run in float.

    A layer is int8 when its activation input comes from a DequantizeLinear (Gemm and MatMul
    also with a float output: QGemm, MatMulIntegerToFloat); a Conv also needs a QuantizeLinear
    on its output (QLinearConv), there is no float-output int8 Conv.
    """
    graph = model.graph
    producer = _producers(graph)
    quantized_out = {n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    out = []
    for n in graph.node:
        if n.op_type not in LAYERS:
            continue
        dq_in = (p := producer.get(n.input[0])) is not None and p.op_type == "DequantizeLinear"
        if not dq_in or (n.op_type in _NEED_Q_OUTPUT and n.output[0] not in quantized_out):
            out.append(n.name)
    return out
