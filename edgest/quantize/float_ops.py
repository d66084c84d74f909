"""Which nodes a PT2E int8 program keeps in float, and why (rules for the ExecuTorch, LiteRT and Core ML quantizers).

All three rules look at the ``GraphModule`` that ``prepare_pt2e`` annotates (ATen ops, shapes in
``meta['val']``) and return node names or a yes/no; :mod:`edgest_executorch.quantizer` keeps
those nodes out of every XNNPACK pattern, :mod:`edgest_litert.quantizer` out of litert-torch's,
:mod:`edgest_coreml.quantizer` out of CoreMLQuantizer's.
The figures below are XNNPACK's; the runtimes' int8 kernels take the same decisions (a conv or
linear quantises its own input, relu and pooling share their input's scale). On LiteRT the
rules took trained emov2_tiny_video's int8 from 19.4 dB / 91.7 % top-1 agreement to 23.7 dB / 97.7 %;
on Core ML, full ViViT-Ti's from 5.3 to 25.8 dB at random init (docs/targets/coreml.md).

* :func:`is_token_op`: an ``add`` or ``cat`` on 3-D (N, L, D) token sequences (residual stream,
  position embedding, the CLS token prepended to the patch tokens);
* :func:`output_layers`: the last layer and the reshapes/means after it;
* :func:`float_islands`: an ``add``/``mul``/``cat`` with no int8 consumer or no int8 producer,
  a spatial depthwise conv with neither.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from edgest.quantization import output_path

#: ops that only move, reshape or average what they read: the output path continues through them
_PASS_THROUGH = {"mean.dim", "mean", "view", "reshape", "flatten.using_ints", "transpose.int", "permute", "squeeze.dim",
                 "squeeze.dims", "squeeze", "unsqueeze", "adaptive_avg_pool2d", "avg_pool2d", "contiguous", "clone",
                 "dropout", "_to_copy", "to.dtype"}

#: ops that move or pick elements, or share their input's int8 scale in XNNPACK (relu, pooling): a
#: value reaches its consumers through them. A ``batch_norm`` here always follows a conv (the quantizer
#: turns standalone ones into depthwise convs first) and is folded into it, so the conv's value, int8 or
#: float, reaches the BN's consumers: without it every residual ``add`` after ``conv → bn`` looked float-fed
#: (squeezetime: 48 adds, 32 muls and 3 depthwise convs kept float for nothing, now 1 add)
_MOVES = {"permute", "reshape", "view", "transpose", "slice", "flatten", "squeeze", "unsqueeze", "clone", "contiguous",
          "dropout", "pad", "constant_pad_nd", "alias", "expand", "select", "split", "split_with_sizes", "unbind",
          "chunk", "getitem", "mean", "relu", "hardtanh", "max_pool2d", "adaptive_avg_pool2d", "avg_pool2d",
          "batch_norm", "_native_batch_norm_legit_no_training"}
#: ops the XNNPACK quantizer runs in int8 whatever their neighbours (a conv/linear quantises its own input)
_INT8_ALWAYS = {"conv1d", "conv2d", "conv3d", "convolution", "linear"}
#: int8 only where that saves a requantisation (see :func:`float_islands`)
_INT8_IF_NEIGHBOURS = {"add", "add_", "mul", "mul_", "cat"}


def aten_name(node: Any) -> str:
    """``aten.add.Tensor`` → ``add.Tensor``, ``aten.cat.default`` → ``cat``."""
    return str(node.target).removeprefix("aten.").removesuffix(".default")


def _kind(node: Any) -> str:
    """``aten.add.Tensor`` → ``add``; ``getitem`` for Python's ``operator.getitem``."""
    if node.op != "call_function":
        return node.op
    name = str(node.target)
    return name.split(".")[1] if name.startswith("aten.") else getattr(node.target, "__name__", name)


def is_token_op(node: Any) -> bool:
    """An ``add`` or ``cat`` on 3-D (N, L, D) tensors: a transformer's residual stream, position embedding or CLS token.

    Kept float: one per-tensor int8 scale over all tokens is set by the patch tokens, and the
    CLS token, which is what the classifier reads, drowns in that step (ViViT: 7.5 dB int8 vs
    19 dB with these adds float; vivit_fe_tiny trained, the ``cat`` of CLS and patch tokens
    also float: 14.9 → 20.5 dB on random inputs, 24.9 → 30.8 dB on clips). Convolutional
    residual adds (4-D) are left to :func:`float_islands`.
    """
    val = node.meta.get("val")
    return (node.op == "call_function" and aten_name(node) in ("add.Tensor", "add_.Tensor", "cat")
            and getattr(val, "ndim", 0) == 3)


def output_layers(graph: Any) -> set[str]:
    """Names of the nodes that compute the program's outputs: the last layer and the reshapes/means after it.

    Kept float. Their int8 output would be the model's output quantised to one per-tensor scale
    calibrated on the calibration inputs; logits outside that range are clipped, and nothing
    downstream runs in int8 to repay it (squeezetime_tiny, trained: 16.4 dB → 32.7 dB on random
    inputs, 31.9 → 33.1 dB on labelled clips with its ``fc`` float; the fc is 1% of the weights).
    """
    return {n.name for n in output_path(graph, lambda n: aten_name(n) in _PASS_THROUGH or "getitem" in str(n.target))}


def _consumers(node: Any) -> list[Any]:
    """The ops that use ``node``'s value, looking through :data:`_MOVES`."""
    out = []
    for user in node.users:
        out.extend(_consumers(user) if _kind(user) in _MOVES else [user])
    return out


def _producers(node: Any) -> list[Any]:
    """The ops whose values ``node`` reads (graph inputs included, constants not), looking through :data:`_MOVES`."""
    out = []
    for arg in node.all_input_nodes:
        if arg.op == "get_attr":
            continue
        out.extend(_producers(arg) if _kind(arg) in _MOVES else [arg])
    return out


def is_spatial_depthwise(node: Any) -> bool:
    """A depthwise conv (one input channel per group) with a kernel larger than 1x1: k*k MACs per output value."""
    if node.op != "call_function" or _kind(node) not in ("conv1d", "conv2d", "convolution") or len(node.args) < 2:
        return False
    groups = node.args[8] if _kind(node) == "convolution" and len(node.args) > 8 else (node.args[6] if len(node.args) > 6 else 1)
    weight = getattr(node.args[1], "meta", {}).get("val")
    return weight is not None and groups > 1 and weight.shape[1] == 1 and any(k > 1 for k in weight.shape[2:])


def float_islands(graph: Any, excluded: Iterable[str] = ()) -> set[str]:
    """Nodes to keep float: ``add``/``mul``/``cat`` with no int8 consumer or no int8 producer, and depthwise convs with neither.

    The XNNPACK quantizer quantises every add, mul and cat: their inputs and their output. Where
    the output only feeds float ops (a residual stream into a LayerNorm, attention scores into
    softmax, the q/k/v ``cat`` into a float matmul), the int8 output is dequantised at once: an
    extra rounding and a Q/DQ pair for nothing. Where every input comes from float ops (the sum
    of two float attention outputs), both inputs are quantised only to be added. A float op there
    is exact and the next int8 op quantises its own input once (emov2_tiny_video trained: 310 →
    115 Q/DQ nodes, 24.7 → 29.3 dB on labelled clips).

    A spatial depthwise conv between float ops (EMOv2: GELU/SiLU → 5x5 depthwise → SiLU) pays
    a quantise and a dequantise of its whole input and output for k*k MACs per value, and its
    per-tensor input scale spans channels of very different ranges: float there is faster and
    more accurate (emov2_1m_video: int8 93 → 85 ms, fp32 100 ms; emov2_tiny_video trained: 21.2 →
    26.8 dB on random inputs). Between int8 ops (ReLU6 chains) it stays int8.

    Decided together (a node's neighbours may become float in turn) from conv/linear, which run
    in int8 (except such depthwise convs), and graph inputs; ``excluded`` nodes are float already.
    """
    nodes = [n for n in graph.nodes if n.op == "call_function"]
    skip = set(excluded)
    int8 = {n for n in nodes if n.name not in skip and (_kind(n) in _INT8_ALWAYS or _kind(n) in _INT8_IF_NEIGHBOURS)}
    either = [n for n in nodes if n in int8 and _kind(n) in _INT8_IF_NEIGHBOURS]
    both = [n for n in nodes if n in int8 and is_spatial_depthwise(n)]
    edges = {n: (_consumers(n), [p for p in _producers(n) if p is not n.args[1]]) for n in either + both}
    changed = True
    while changed:
        changed = False
        for node in either + both:
            if node not in int8:
                continue
            consumers, producers = edges[node]
            int8_out = any(c in int8 for c in consumers)
            int8_in = any(p in int8 or p.op == "placeholder" for p in producers)
            if (not int8_out or (producers and not int8_in)) if node in either else not (int8_out or int8_in):
                int8.discard(node)
                changed = True
    return {n.name for n in either + both if n not in int8}


def by_kind(graph: Any, names: set[str], kind: Any = aten_name) -> dict[str, int]:
    """How many of ``graph``'s nodes ``names`` there are of each op, the op named by ``kind(node)``, sorted."""
    return dict(sorted(Counter(kind(n) for n in graph.nodes if n.name in names).items()))


def float_rules(graph: Any, held: Iterable[str] = (), islands: bool = True) -> dict[str, set[str]]:
    """The nodes each rule keeps float on ``graph``: ``output`` (:func:`output_layers`), ``tokens``
    (:func:`is_token_op`) and ``islands`` (:func:`float_islands`, decided with ``held``, nodes float for another
    reason, and the other two rules' nodes as float; empty without ``islands``, as for dynamic int8)."""
    output = output_layers(graph)
    tokens = {n.name for n in graph.nodes if is_token_op(n)}
    found = float_islands(graph, output | tokens | set(held)) if islands else set()
    return {"output": output, "tokens": tokens, "islands": found}


def rules_note(floats: dict[str, dict[str, int]]) -> str:
    """``"; kept float by rule: output 1, islands 3"`` for a quantize pass's summary (``floats``: rule → op counts,
    as :func:`by_kind` gives them), or "" when no rule kept a node."""
    if not any(floats.values()):
        return ""
    return "; kept float by rule: " + ", ".join(f"{rule} {sum(k.values())}" for rule, k in floats.items() if k)
