"""Op coverage for ``edgest check``: OpenVINO's PyTorch frontend and the CPU plugin's ``query_model``.

``convert_model`` on an ExportedProgram decomposes it (``TorchFXPythonDecoder.from_exported_program``,
keeping the ops the frontend converts whole) and converts each node by the frontend's rules; when
some have no rule it refuses the model, listing them ("No conversion rule found for operations:
..."). This module makes the same decoder, converts it (the IR is not compiled or written), and
then asks the CPU plugin which of the converted operations it supports (``Core.query_model``):

* a node with a conversion rule, in a model the CPU plugin takes whole → ``native``;
* a node listed as having no rule → ``unsupported``;
* when the CPU plugin leaves operations out, the coverage's note names their types.

OpenVINO is a plugin built only on edgest's public API; this is its answer to ``Target.coverage``.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import TYPE_CHECKING, Any

from edgest.coverage import Coverage, is_work, judged_per_op

if TYPE_CHECKING:
    import torch

_NO_RULE = re.compile(r"No conversion rule found for operations: ([^\n]+)")


def _convert(program: torch.export.ExportedProgram) -> tuple[Any, Any, set[str]]:
    """(decoder, converted model or None, op names with no conversion rule)."""
    import openvino as ov
    from openvino.frontend.pytorch.fx_decoder import TorchFXPythonDecoder

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the decoder logs a traceback per op it cannot keep whole in torch's decomp table
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            decoder = TorchFXPythonDecoder.from_exported_program(program)
            try:
                return decoder, ov.convert_model(decoder), set()
            except Exception as exc:
                found = _NO_RULE.search(str(exc))
                if not found:
                    raise
                return decoder, None, {name.strip() for name in found.group(1).split(",") if name.strip()}
    finally:
        root.setLevel(level)


def _cpu_gaps(model: Any) -> list[str]:
    """Operation types of ``model`` the CPU plugin does not support."""
    import openvino as ov

    supported = ov.Core().query_model(model, "CPU")
    return sorted({op.get_type_name() for op in model.get_ops() if op.get_friendly_name() not in supported
                   and op.get_type_name() not in ("Parameter", "Result", "Constant")})


def coverage(program: torch.export.ExportedProgram) -> Coverage:
    """Convert ``program`` as ``convert_model`` does; judge its nodes by the frontend's verdict and the CPU plugin's.

    The conversion runs on :func:`edgest.coverage_sample.op_sample`'s program (one node per distinct op signature;
    the frontend's rules are per op), or on the whole program where that cannot be sampled.
    """
    import openvino as ov

    found: dict[str, Any] = {}

    def converted(prog: torch.export.ExportedProgram) -> torch.fx.Graph:
        decoder, model, missing = _convert(prog)
        found.update(model=model, missing=missing)
        return decoder.pt_module.graph

    def judge(node: torch.fx.Node) -> tuple[str, str] | None:
        if not is_work(node):
            return None
        if str(node.target) in found["missing"]:
            return "unsupported", f"no OpenVINO PyTorch-frontend conversion rule for {node.target}"
        return "native", ""

    answer = judged_per_op("openvino", program, converted, judge)
    model = found["model"]
    gaps = _cpu_gaps(model) if model is not None else []
    note = f"OpenVINO {ov.get_version()} PyTorch frontend"
    note += (f"; CPU plugin query_model leaves out: {', '.join(gaps)}" if gaps
             else "; CPU plugin takes every converted operation" if model is not None else "")
    return Coverage(answer.target, answer.ops, note)
