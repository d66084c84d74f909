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
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.debug import GraphNode, Probe, inside, module_exits

if TYPE_CHECKING:
    import numpy as np


def _graph_nodes(model: Any) -> list[GraphNode]:
    from edgest_onnx import scopes

    modules = scopes.modules_of(model)
    return [GraphNode(out, modules.get(n.name, ""), tuple(i for i in n.input if i))
            for n in model.graph.node for out in n.output if out]


def probe_tensors(model: Any, probes: Sequence[Probe]) -> dict[str, str]:
    """Probe module → the tensor of ``model`` holding its output (probes without one are left out)."""
    nodes = _graph_nodes(model)
    made = {n.name: n.module for n in nodes}
    exits = module_exits(nodes, [o.name for o in model.graph.output])
    out = {}
    for p in probes:
        # a name is trusted when a node of that module (or of none recorded) writes it: ONNX Runtime's quantizer
        # drops a ReLU after a Conv and gives the Conv the ReLU's output name
        by_name = p.node in made and (not made[p.node] or inside(made[p.node], p.module))
        name = p.node if by_name else exits.get(p.module)
        if name is not None:
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


def intermediates(path: Path, inputs: Sequence[Sequence[np.ndarray]], probes: Sequence[Probe]) -> dict[str, list[np.ndarray]]:
    """Run the ONNX file at ``path`` with every probe's tensor as an extra output; probe module → value per input set."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    tensors = probe_tensors(model, probes)
    model = with_outputs(model, list(tensors.values()))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = [i.name for i in session.get_inputs()]
    wanted = list(dict.fromkeys(tensors.values()))
    runs = [dict(zip(wanted, session.run(wanted, dict(zip(feeds, xs))))) for xs in inputs]
    return {module: [r[name] for r in runs] for module, name in tensors.items()}
