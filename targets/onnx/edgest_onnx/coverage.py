"""Op coverage for ``edgest check``: the torch.onnx exporter's own op registry, without exporting.

The exporter first decomposes the program with a table built from its registry (ops it has an
ONNX function for stay whole), then translates each node through the registry; a node with no
function fails the export. This module runs the same decomposition and asks the same registry:
a registered op is ``native`` (ONNX Runtime's CPU provider runs the standard ONNX operators the
functions emit), an unregistered one ``unsupported``.
"""

from __future__ import annotations

import logging
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from edgest.coverage import Coverage, is_work, judged_per_op

if TYPE_CHECKING:
    import torch


@lru_cache(maxsize=1)
def registry() -> Any:
    """The exporter's registry of ONNX functions (onnxscript's torchlib), built once per process."""
    from torch.onnx._internal.exporter import _registration

    quiet = logging.getLogger("torch.onnx")  # it names each optional torchvision op it skips
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return _registration.ONNXRegistry.from_torchlib()
    finally:
        quiet.setLevel(level)


def coverage(program: torch.export.ExportedProgram) -> Coverage:
    """Decompose ``program`` as the exporter does and judge every node by the registry."""
    import importlib.metadata

    from torch.onnx._internal.exporter import _fx_passes

    reg = registry()

    def decompose(prog: torch.export.ExportedProgram) -> torch.fx.Graph:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _fx_passes.decompose_with_registry(prog, reg).graph

    def judge(node: torch.fx.Node) -> tuple[str, str] | None:
        if not is_work(node):
            return None
        if reg.is_registered(node.target):
            return "native", ""
        return "unsupported", f"no ONNX function for {node.target} in the exporter's registry"

    return judged_per_op("onnx", program, decompose, judge,
                  f"torch.onnx exporter registry (onnxscript {importlib.metadata.version('onnxscript')}) after its decompositions")
