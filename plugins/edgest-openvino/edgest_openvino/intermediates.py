"""Per-module outputs of an OpenVINO IR for ``edgest debug``: the probes' tensors added as model outputs.

OpenVINO's PyTorch frontend decomposes the captured program again before converting it, and names
each IR tensor after the node of *that* graph (``convolution_1:0``), not after edgest's
(``conv2d_1``). So the same decomposition is run here, through the frontend's own decoder, and
:func:`edgest.debug.module_exits` finds each module's output among its nodes (which keep their
``nn_module_stack``); the IR tensor of that name is the probe. Where a quantize node reads it (int8
from NNCF), that node's FakeQuantize output is taken instead: what the next layer reads. Ops the
frontend folds away (a ReLU into the FakeQuantize after it) have no tensor left and are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.debug import Probe, fx_nodes, module_exits

if TYPE_CHECKING:
    import numpy as np
    import torch


def frontend_exits(program: torch.export.ExportedProgram) -> dict[str, str]:
    """Module path → name of its output node in the graph OpenVINO's frontend converts from ``program``."""
    import logging
    import warnings

    disabled = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the decoder logs each op of its keep-list torch's decomposition table lacks, with a traceback
        logging.disable(logging.WARNING)
        try:
            from openvino.frontend.pytorch.fx_decoder import TorchFXPythonDecoder

            graph = TorchFXPythonDecoder.from_exported_program(program).pt_module.graph
        finally:
            logging.disable(disabled)
    return {module: _quantized(graph, name) for module, name in module_exits(*fx_nodes(graph)).items()}


def _quantized(graph: torch.fx.Graph, name: str) -> str:
    """``name``, or the quantize node (a FakeQuantize in the IR) that reads it: what the next layer reads under int8."""
    node = next(n for n in graph.nodes if n.name == name)
    for user in node.users:
        target = str(user.target)
        if "quantize_per" in target and "dequantize" not in target:
            return user.name
    return name


def probe_ports(model: Any, exits: dict[str, str], probes: Sequence[Probe]) -> dict[str, Any]:
    """Probe module → the IR output port holding its value (probes whose tensor the IR lost are left out)."""
    ports = {name: port for op in model.get_ordered_ops() for port in op.outputs() for name in port.get_names()}
    out = {}
    for p in probes:
        port = ports.get(f"{exits.get(p.module, p.node)}:0")
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
    ports = probe_ports(model, frontend_exits(program), probes)
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
