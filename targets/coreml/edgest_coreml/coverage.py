"""Op coverage for ``edgest check``: coremltools' torch frontend op registry, without converting.

coremltools reads an ``ATEN``-dialect program (:func:`edgest_coreml.convert.convert` gets one
with ``run_decompositions({})``, decomposing nothing) and looks each node's kind (the op's name,
sanitised: ``aten::conv2d`` → ``conv2d``) up in its registry of torch-op converters, raising
"Unsupported fx node" when one is missing. This module prepares the program the same way and
asks the same registry: a kind with a converter is ``native`` (a MIL op; where Core ML places it,
Neural Engine, GPU or CPU, is decided on the device and is not predicted), one without ``unsupported``.

Importing coremltools takes seconds (it probes sklearn, xgboost and more), paid once per process.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from edgest.coverage import Coverage, is_work, judged_per_op

if TYPE_CHECKING:
    import torch


def kind(node: torch.fx.Node) -> str:
    """The name coremltools looks ``node`` up by (as its ``InternalTorchIRGraph`` computes it)."""
    from coremltools.converters.mil.frontend.torch.utils import sanitize_op_kind

    try:
        name = node.target.name()
    except Exception:  # noqa: BLE001 - Python callables have no schema name
        name = getattr(node.target, "__name__", str(node.target))
    return sanitize_op_kind(name)


def coverage(program: torch.export.ExportedProgram) -> Coverage:
    """Prepare ``program`` as :func:`~edgest_coreml.convert.convert` does and judge each node by the registry."""
    import importlib.metadata

    from edgest_coreml.convert import _drop_aliases, _quiet

    with _quiet():  # coremltools' import-time chatter (what it probes for is hidden: edgest_coreml.lean_import)
        from coremltools.converters.mil.frontend.torch import ops  # noqa: F401 - fills the registry
        from coremltools.converters.mil.frontend.torch.torch_op_registry import (
            _TORCH_OPS_REGISTRY,
        )
    def prepare(prog: torch.export.ExportedProgram) -> torch.fx.Graph:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = prog.run_decompositions({}) if prog.dialect not in ("ATEN", "EDGE") else prog
        _drop_aliases(prepared)
        return prepared.graph

    def judge(node: torch.fx.Node) -> tuple[str, str] | None:
        if not is_work(node):
            return None
        if kind(node) in _TORCH_OPS_REGISTRY.name_to_func_mapping:  # what ``kind in registry`` reads, without its deprecation
            return "native", ""
        return "unsupported", f"no coremltools converter for '{kind(node)}'"

    return judged_per_op("coreml", program, prepare, judge,
                  f"coremltools {importlib.metadata.version('coremltools')} torch frontend op registry; "
                  "compute-unit placement (ANE/GPU/CPU) is decided on the device")
