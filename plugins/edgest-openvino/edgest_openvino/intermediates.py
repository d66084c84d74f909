"""Per-module outputs of an OpenVINO IR for ``edgest debug``: the probes' tensors added as model outputs.

OpenVINO's PyTorch frontend decomposes the captured program again before converting it, and names
each IR tensor after the node of *that* graph (``convolution_1:0``), not after edgest's
(``conv2d_1``). So the same decomposition is run here, through the frontend's own decoder, and
:func:`edgest.debug.module_exits` finds each module's output among its nodes (which keep their
``nn_module_stack``); the IR tensor of that name is the probe. Where a quantize node reads it (int8
from NNCF), that node's FakeQuantize output is taken instead: what the next layer reads. Ops the
frontend folds away (a ReLU into the FakeQuantize after it) have no tensor left and are skipped.

A tensor name is not always its node's value. OpenVINO's transformations fold a Multiply (a layer
scale, a BatchNorm's scale) into the convolution before it, and the result keeps the names of what it
replaced: a port named ``convolution_22:0`` and ``mul_9:0`` holds ``mul_9``'s value, and a convolution
rebuilt with only a BatchNorm's scale (its shift left in the Add after it) keeps ``convolution_1:0``
for a value that is neither. So a port stands for a name only when no later name on it is more than a
view of it, and not when a transformation rebuilt the port's op (its friendly name is no frontend
node's) and it carries only the name of a convolution or matmul: an op after it was folded in (a fully
folded conv → BatchNorm carries the BatchNorm's name, and holds its value).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.debug import Probe, fx_nodes, module_exits

if TYPE_CHECKING:
    import numpy as np
    import torch


#: frontend ops whose output holds their input's values in the same order (another shape at most)
_VIEWS = ("view", "reshape", "_unsafe_view", "squeeze", "unsqueeze", "flatten", "clone", "alias", "contiguous")
#: frontend ops OpenVINO folds a following Multiply or Add into (the rebuilt op keeps their name)
_FOLD_INTO = ("convolution", "conv2d", "conv1d", "conv3d", "linear", "matmul", "mm", "bmm", "addmm")


@dataclass(frozen=True)
class Frontend:
    """What probes need of the graph OpenVINO's frontend converts: module exits, node order and view nodes."""

    exits: dict[str, str]
    order: dict[str, int]
    views: frozenset[str]
    folds_into: frozenset[str]


def _frontend_graph(program: torch.export.ExportedProgram) -> torch.fx.Graph:
    import logging
    import warnings

    disabled = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the decoder logs each op of its keep-list torch's decomposition table lacks, with a traceback
        logging.disable(logging.WARNING)
        try:
            from openvino.frontend.pytorch.fx_decoder import TorchFXPythonDecoder

            return TorchFXPythonDecoder.from_exported_program(program).pt_module.graph
        finally:
            logging.disable(disabled)


def frontend(program: torch.export.ExportedProgram) -> Frontend:
    """The :class:`Frontend` of the graph OpenVINO's frontend converts from ``program``."""
    graph = _frontend_graph(program)
    exits = {module: _quantized(graph, name) for module, name in module_exits(*fx_nodes(graph)).items()}
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    kinds = {n.name: str(n.target).removeprefix("aten.").split(".")[0] for n in graph.nodes if n.op == "call_function"}
    return Frontend(exits, order, frozenset(n for n, k in kinds.items() if k in _VIEWS),
                    frozenset(n for n, k in kinds.items() if k in _FOLD_INTO))


def _quantized(graph: torch.fx.Graph, name: str) -> str:
    """``name``, or the quantize node (a FakeQuantize in the IR) that reads it: what the next layer reads under int8."""
    node = next(n for n in graph.nodes if n.name == name)
    for user in node.users:
        target = str(user.target)
        if "quantize_per" in target and "dequantize" not in target:
            return user.name
    return name


def _stands_for(op: Any, name: str, names: list[str], fe: Frontend) -> bool:
    """Whether the output port of ``op`` carrying the frontend ``names`` holds the value of node ``name``."""
    if op.get_type_name() == "Result" or any(fe.order[n] > fe.order[name] and n not in fe.views for n in names):
        return False  # a Result repeats its producer's port; else an op after it was folded into this one
    rebuilt = op.get_friendly_name().split("/", 1)[0] not in fe.order  # by a transformation, not the frontend
    return not (rebuilt and names == [name] and name in fe.folds_into)


def probe_ports(model: Any, fe: Frontend, probes: Sequence[Probe]) -> dict[str, Any]:
    """Probe module → the IR output port holding its value (probes whose value no port holds are left out)."""
    ports = {}
    for op in model.get_ordered_ops():
        for port in op.outputs():
            names = [n[:-2] for n in port.get_names() if n.endswith(":0") and n[:-2] in fe.order]
            ports.update({name: port for name in names if _stands_for(op, name, names, fe)})
    out = {}
    for p in probes:
        port = ports.get(fe.exits.get(p.module, p.node))
        if port is not None:
            out[p.module] = port
    return out


def intermediates(path: Path, program: torch.export.ExportedProgram, inputs: Sequence[Sequence[np.ndarray]],
                  probes: Sequence[Probe]) -> dict[str, list[np.ndarray]]:
    """Run the IR at ``path`` at its recorded precision with every probe as an extra output; module → value per input."""
    import openvino as ov

    from edgest_openvino.device import DEVICE, compile_config, requested_hint

    core = ov.Core()
    model = core.read_model(str(path))
    ports = probe_ports(model, frontend(program), probes)
    names = {}
    for module, port in ports.items():
        if not port.get_names():  # results are looked up by tensor name
            port.get_tensor().set_names({f"edgest_probe:{module}"})
        names[module] = min(port.get_names())
    model.add_outputs(list(ports.values()))  # ports that are outputs already stay as they are
    compiled = core.compile_model(model, DEVICE, compile_config(requested_hint(model), 1))
    request = compiled.create_infer_request()
    runs = []
    for xs in inputs:
        results = request.infer(list(xs), share_inputs=False, share_outputs=False)
        runs.append({module: results[name] for module, name in names.items()})
    return {module: [r[module] for r in runs] for module in ports}
