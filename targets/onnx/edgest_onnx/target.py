"""ONNX target: ``torch.onnx.export(dynamo=True)`` → onnxsim → ONNX Runtime (CPU EP).

onnx, onnxsim and onnxruntime are imported inside the methods, so this module is cheap to
import and a missing toolchain shows up as "unavailable", not as a broken CLI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest import Unsupported
from edgest.capture import op_origin
from edgest.target import Lowered, Target
from edgest_onnx.device import OrtRunner

if TYPE_CHECKING:
    import torch

    from edgest.coverage import Coverage
    from edgest.quantization import Quantizer


_MISSING_OP = re.compile(r"No ONNX function found for <OpOverload\(op='([\w.]+)', overload='(\w+)'\)>")


def _node_count(model: Any) -> int:
    return len(model.graph.node)


def simplify(path: Path) -> dict[str, Any]:
    """Run onnxsim on ``path`` in place; returns node counts before/after and whether it applied.

    onnxsim drops node metadata; each surviving node gets its torch module back (see
    :mod:`edgest_onnx.scopes`), so ``--quant-skip`` can still find a module's nodes.
    """
    import onnx
    import onnxsim

    from edgest_onnx import scopes

    model = onnx.load(str(path))
    before = _node_count(model)
    modules = scopes.index(model)
    try:
        simplified, ok = onnxsim.simplify(model)
    except Exception as exc:  # noqa: BLE001 - onnxsim failing is not fatal: keep the exported graph
        return {"nodes_exported": before, "nodes_simplified": before, "onnxsim": f"skipped: {str(exc).splitlines()[0][:120]}"}
    if not ok:
        return {"nodes_exported": before, "nodes_simplified": before, "onnxsim": "skipped: check failed"}
    scopes.attach(simplified, modules)
    onnx.save(simplified, str(path))
    return {"nodes_exported": before, "nodes_simplified": _node_count(simplified), "onnxsim": "applied"}


def export_onnx(program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], path: Path) -> dict[str, Any]:
    """Export a captured program to a self-contained, checked, simplified ONNX file."""
    import logging
    import warnings

    import onnx
    import torch

    # the exporter logs every torchvision op it cannot register; edgest does not use torchvision
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            onnx_program = torch.onnx.export(program, example_inputs, dynamo=True, verbose=False)
        except Exception as exc:  # noqa: BLE001 - name the op the exporter could not convert
            missing = _MISSING_OP.search(str(exc))
            if not missing:
                raise
            op = f"{missing.group(1)}.{missing.group(2)}"
            origin = op_origin(program, missing.group(1))
            raise Unsupported(
                f"target 'onnx' cannot lower op {op}{f' (from {origin})' if origin else ''}: torch.onnx "
                f"{torch.__version__} has no ONNX conversion for it; replace the op or choose another target"
            ) from exc
    onnx_program.save(str(path))
    onnx.checker.check_model(str(path), full_check=True)
    details = simplify(path)
    model = onnx.load(str(path), load_external_data=False)
    details["opset"] = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return details


class OnnxTarget(Target):
    """ONNX via the dynamo exporter, simplified, run by ONNX Runtime on the CPU."""

    name = "onnx"
    artifact_format = "onnx"
    description = "ONNX (torch.onnx dynamo + onnxsim), ONNX Runtime CPU"
    requires = ("onnx", "onnxscript", "onnxsim", "onnxruntime")
    runtime_modules = ("onnxruntime",)  # onnxsim imports torch: 1.6 s of every check process, for nothing
    toolchain = ("onnx", "onnxscript", "onnxsim", "onnxruntime")
    install_hint = "pip install -e targets/onnx"
    precisions = ("fp32", "int8")
    device_runner = "edgest_onnx.device"
    runtime_requirements = (("numpy", "onnxruntime=={onnxruntime}"),)

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        path = out_dir / "model.onnx"
        return Lowered(path, export_onnx(program, example_inputs, path))

    def load(self, path: Path, threads: int) -> OrtRunner:
        return OrtRunner(path, threads)

    def intermediates(self, path: Path, program: torch.export.ExportedProgram, inputs: Any, probes: Any) -> dict[str, Any]:
        """Module outputs as extra graph outputs run by ONNX Runtime (:mod:`edgest_onnx.intermediates`)."""
        from edgest_onnx.intermediates import intermediates

        return intermediates(path, inputs, probes, program)

    def quantizer(self, scheme: str) -> Quantizer | None:
        """ONNX Runtime quantisation of the lowered file: static QDQ (``int8``) or dynamic (``int8-weight``)."""
        from edgest_onnx.quantizer import OrtQuantizer

        return OrtQuantizer(scheme) if scheme in ("int8", "int8-weight") else None

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        """Ops the torch.onnx exporter has an ONNX function for, after its decompositions (:mod:`edgest_onnx.coverage`)."""
        from edgest_onnx.coverage import coverage

        return coverage(program)
