"""OpenVINO target: ``openvino.convert_model(ExportedProgram)`` → IR (``model.xml`` + ``model.bin``) → CPU plugin.

Written against edgest's public API only: :class:`edgest.Target`, :class:`edgest.Lowered` and
the errors exported by ``edgest``. ``openvino`` is imported inside the methods, so this module
is cheap to import and a missing toolchain shows up as "unavailable", not as a broken CLI.

Two settings keep the fp32 contract honest:

* ``save_model(..., compress_to_fp16=False)``: by default OpenVINO stores weights as fp16 in
  the ``.bin``; an fp32 artifact must keep fp32 weights.
* ``INFERENCE_PRECISION_HINT=f32`` at compile time: on CPUs with bf16/AMX (or fp16 on ARM)
  the CPU plugin otherwise picks a lower execution precision on its own.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest import Lowered, Target, TargetUnavailable
from edgest_openvino import device
from edgest_openvino.device import DEVICE, INFERENCE_PRECISION

if TYPE_CHECKING:
    import torch


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _port(port: Any) -> dict[str, Any]:
    names = sorted(port.get_names())
    return {"name": names[0] if names else "", "shape": str(port.get_partial_shape()),
            "dtype": port.get_element_type().get_type_name()}


def _pin_static_shapes(model: Any, example_inputs: Sequence[Any]) -> str:
    """Fix the IR's inputs to the example shapes (edgest models are static); returns what happened.

    The PyTorch frontend marks the dims of an ExportedProgram's inputs dynamic (``[?,3,?,?]``);
    a static IR lets the CPU plugin plan memory and pick kernels once, at compile time.
    """
    import openvino as ov

    if all(p.get_partial_shape().is_static for p in model.inputs):
        return "static"
    if len(model.inputs) != len(example_inputs):
        return f"dynamic (IR has {len(model.inputs)} inputs, example has {len(example_inputs)})"
    try:
        model.reshape({i: ov.PartialShape(list(t.shape)) for i, t in enumerate(example_inputs)})
    except Exception as exc:  # noqa: BLE001 - a dynamic IR still runs; say why it stayed dynamic
        return f"dynamic (reshape failed: {(str(exc).strip().splitlines() or [''])[0][:120]})"
    return "pinned to example shapes"


def export_ir(program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], xml: Path) -> dict[str, Any]:
    """Convert a captured program to fp32 OpenVINO IR at ``xml`` (weights beside it in ``.bin``)."""
    import openvino as ov

    with warnings.catch_warnings():
        # torch's pytree deprecation noise from run_decompositions inside the frontend
        warnings.simplefilter("ignore", FutureWarning)
        # openvino >= 2024 takes a torch.export.ExportedProgram directly (TorchFXPythonDecoder)
        model = ov.convert_model(program, example_input=example_inputs)
    shapes = _pin_static_shapes(model, example_inputs)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    bin_path = xml.with_suffix(".bin")
    xml_bytes = xml.stat().st_size
    bin_bytes = bin_path.stat().st_size if bin_path.exists() else 0
    ops = model.get_ordered_ops()
    return {
        "openvino_version": ov.get_version(),
        "device": DEVICE,
        "inference_precision": INFERENCE_PRECISION,
        "frontend": "pytorch (torch.export.ExportedProgram)",
        "compress_to_fp16": False,
        # floating-point constants (weights); integer ones are shapes/indices
        "weights_dtypes": sorted({op.get_output_element_type(0).get_type_name() for op in ops
                                  if op.get_type_name() == "Constant" and op.get_output_element_type(0).is_real()}),
        "ops": len(ops),
        "input_shapes": shapes,
        "inputs": [_port(p) for p in model.inputs],
        "outputs": [_port(p) for p in model.outputs],
        "files": [xml.name, bin_path.name] if bin_path.exists() else [xml.name],
        "xml_bytes": xml_bytes,
        "bin_bytes": bin_bytes,
        # edgest's artifact size and sha256 cover model.xml only (the main file); the IR is both
        "ir_bytes": xml_bytes + bin_bytes,
        "bin_sha256": _sha256(bin_path) if bin_path.exists() else "",
    }


class OpenVINORunner(device.OpenVINORunner):
    """The device runner on this host, raising edgest's :class:`~edgest.TargetUnavailable`."""

    unavailable = TargetUnavailable


class OpenVINOTarget(Target):
    """OpenVINO IR (fp32), run by the OpenVINO CPU plugin."""

    name = "openvino"
    artifact_format = "xml"
    description = "OpenVINO IR (convert_model from torch.export, fp32), OpenVINO CPU plugin"
    requires = ("openvino",)
    toolchain = ("openvino",)
    install_hint = "pip install -e plugins/edgest-openvino"
    precisions = ("fp32",)
    device_runner = "edgest_openvino.device"
    runtime_requirements = (("numpy", "openvino=={openvino}"),)

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        xml = out_dir / "model.xml"
        return Lowered(xml, export_ir(program, example_inputs, xml))

    def load(self, path: Path, threads: int) -> OpenVINORunner:
        return OpenVINORunner(path, threads)
