"""Per-module outputs of an ONNX artifact for ``edgest debug``: the probes' tensors added as graph outputs.

Which tensor holds a module's output? The dynamo exporter names each value after the FX node that
made it, and onnxsim keeps those names, so a probe's ``node`` is usually a tensor of the file. Where
the exporter renamed it (``adaptive_avg_pool2d`` → ``mean``), the module's output is found in the
file itself: each node carries its module (:mod:`edgest_onnx.scopes`) and
:func:`edgest.debug.module_exits` picks the last value of the module read outside it.

In a QDQ (int8) file the module's own output is taken, before its QuantizeLinear → DequantizeLinear:
ONNX Runtime's quantizer folds a ReLU after a convolution into that pair, so the pair's output is
no longer the convolution's. The error of quantising an activation therefore shows in the module
that reads it. ONNX Runtime keeps graph outputs intact, so an extra output can stop a fusion at
that point; the values are those of the same graph.

A name is not always its node's value: the exporter's optimiser folds a constant Mul (a layer scale)
and a BatchNorm that follow a convolution into its weights, and the folded convolution keeps its own
output name, even where those ops belong to the next module (a pre-norm block); and ONNX Runtime's
quantizer gives a dropped ReLU's name to the node before it. :func:`folded_values` reads both from
the file and the program: such a tensor is compared as the node whose value it holds, and a module
whose own output the file no longer holds is not compared at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.debug import GraphNode, Probe, inside, module_exits

if TYPE_CHECKING:
    import numpy as np
    import torch


def _graph_nodes(model: Any) -> list[GraphNode]:
    from edgest_onnx import scopes

    modules = scopes.modules_of(model)
    return [GraphNode(out, modules.get(n.name, ""), tuple(i for i in n.input if i))
            for n in model.graph.node for out in n.output if out]


#: ONNX op type → the program ops (aten names, lower case) a file node of that type can stand for
_KINDS = {"Conv": ("convolution", "conv1d", "conv2d", "conv3d"), "MatMul": ("linear", "matmul", "mm", "bmm"),
          "Gemm": ("linear", "addmm", "mm")}


def _path(node: str, target: str, reads: dict[str, tuple[str, ...]], in_file: set[str]) -> list[str] | None:
    """The program nodes from ``target`` (excluded) to ``node`` (included) through nodes the file lacks, or None."""
    stack, seen = [(node, [node])], set()
    while stack:
        here, path = stack.pop()
        for arg in reads.get(here, ()):
            if arg == target:
                return path[::-1]
            if arg not in in_file and arg in reads and arg not in seen:
                seen.add(arg)
                stack.append((arg, [*path, arg]))
    return None


def _folded_into_writer(path: list[str], reader_type: str, kinds: dict[str, str]) -> str | None:
    """Of a path from a tensor to the node a file reader computes, the last node folded into the tensor's writer:
    the nodes before the reader's own (the first of the reader's op type); None when the reader is unknown."""
    own = _KINDS.get(reader_type, (reader_type.lower(),))
    first = next((i for i, name in enumerate(path) if kinds.get(name) in own), None)
    return path[first - 1] if first else None


def _program_graph(program: torch.export.ExportedProgram) -> tuple[dict[str, tuple[str, ...]], dict[str, str], dict[str, str]]:
    """Program node → the nodes it reads, → its innermost module, and → its op (``conv2d``, ``mul``, ...)."""
    from edgest.debug.probes import innermost

    calls = [n for n in program.graph.nodes if n.op == "call_function"]
    kinds = {n.name: str(getattr(n.target, "__name__", n.target)).split(".")[0].lower() for n in calls}
    return ({n.name: tuple(a.name for a in n.all_input_nodes) for n in calls}, {n.name: innermost(n) for n in calls},
            kinds)


def folded_values(model: Any, program: torch.export.ExportedProgram) -> dict[str, str]:
    """File tensor named after a program node → the other program node whose value it holds, where they differ.

    Two cases: a node of module A writing a tensor named after a node of another module holds that node's input
    (ONNX Runtime's quantizer drops a ReLU after a Conv or a Transpose, clamps in the QuantizeLinear after it
    instead, and gives the node before it the ReLU's name: the value is what the ReLU read, a BatchNorm folded into
    the Conv included); and a tensor a file node reads where, in the program, nodes the file lacks lie between the
    tensor's namesake and the reader's own node (the first of the reader's op type on that path) holds the last of
    them: they were folded into the node that writes it (a Mul or BatchNorm after a Conv), not into the reader
    (a Conv that absorbed the BatchNorm after it reads its input as it is). Readers are seen through
    QuantizeLinear → DequantizeLinear pairs.
    """
    from edgest_onnx import scopes

    reads, where, kinds = _program_graph(program)
    in_file = {o for n in model.graph.node for o in n.output if o}
    writers = scopes.modules_of(model)
    held = {out: inputs[0] for n in model.graph.node for out in n.output
            if out in reads and (mod := writers.get(n.name)) and mod != where[out]
            and len(inputs := [i for i in reads[out] if i in reads]) == 1}
    made = {o: n for n in model.graph.node for o in n.output}
    dq_source = {o: made[n.input[0]].input[0] for o, n in made.items()
                 if n.op_type == "DequantizeLinear" and n.input[0] in made and made[n.input[0]].op_type == "QuantizeLinear"}
    for node in model.graph.node:
        for value in (held.get(o, o) for o in node.output if o in reads):
            for name in (dq_source.get(i, i) for i in node.input):
                path = _path(value, name, reads, in_file) if name in reads and name not in reads[value] else None
                later = _folded_into_writer(path, node.op_type, kinds) if path else None
                if later is not None:
                    held[name] = later
    return held


def probe_tensors(model: Any, probes: Sequence[Probe], program: torch.export.ExportedProgram | None = None) -> dict[str, str]:
    """Probe module → the tensor of ``model`` holding its output (probes without one are left out); with the
    ``program`` the file was lowered from, a tensor holding a later node's value (:func:`folded_values`) is
    that node's."""
    nodes = _graph_nodes(model)
    made = {n.name: n.module for n in nodes}
    exits = module_exits(nodes, [o.name for o in model.graph.output])
    held = folded_values(model, program) if program is not None else {}
    holder = {later: name for name, later in held.items()}
    out = {}
    for p in probes:
        # a name is trusted when a node of that module (or of none recorded) writes it, unless the tensor holds
        # another node's value (folded_values: a folded BatchNorm, a ReLU ONNX Runtime's quantizer dropped)
        by_name = p.node in made and (not made[p.node] or inside(made[p.node], p.module))
        name = holder.get(p.node) or (p.node if by_name else exits.get(p.module))
        if name is not None and held.get(name, p.node) == p.node:
            out[p.module] = name
    return out


def with_outputs(model: Any, names: Sequence[str]) -> Any:
    """``model`` with the tensors ``names`` added as graph outputs (typed where shape inference knows them)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    infos = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
    present = {o.name for o in model.graph.output}
    for name in dict.fromkeys(names):
        if name not in present:
            model.graph.output.append(infos.get(name) or onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return model


def intermediates(path: Path, inputs: Sequence[Sequence[np.ndarray]], probes: Sequence[Probe],
                  program: torch.export.ExportedProgram | None = None) -> dict[str, list[np.ndarray]]:
    """Run the ONNX file at ``path`` (lowered from ``program``) with every probe's tensor as an extra output; probe
    module → value per input set."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    tensors = probe_tensors(model, probes, program)
    model = with_outputs(model, list(tensors.values()))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = [i.name for i in session.get_inputs()]
    wanted = list(dict.fromkeys(tensors.values()))
    runs = [dict(zip(wanted, session.run(wanted, dict(zip(feeds, xs))))) for xs in inputs]
    return {module: [r[name] for r in runs] for module, name in tensors.items()}
