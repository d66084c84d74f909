"""OpenVINO target: ``openvino.convert_model(ExportedProgram)`` → IR (``model.xml`` + ``model.bin``) → CPU plugin.

Written against edgest's public API only: :class:`edgest.Target`, :class:`edgest.Lowered`, the
quantisation contract (:mod:`edgest.quantization`) and the errors exported by ``edgest``.
``openvino`` and ``nncf`` are imported inside the methods, so this module is cheap to import and
a missing toolchain shows up as "unavailable", not as a broken CLI.

Precisions: fp32, fp16 and bf16 are one IR run at a different ``INFERENCE_PRECISION_HINT``
(recorded in the IR's rt_info, see :mod:`edgest_openvino.device`); int8 is NNCF on the captured
program (:mod:`edgest_openvino.quantizer`), and what stays float runs at the CPU plugin's default
precision on each CPU (bf16 where the CPU has it, as OpenVINO's own int8 does), unless the
``precision`` option pins it: ViViT-Ti's int8 spends a fifth of its time in attention's float
matmuls and softmax, and runs 91 → 75 ms at the same 24 dB with them at bf16 (docs/targets/openvino.md).
Two settings keep the contract honest:

* ``save_model(..., compress_to_fp16=False)`` (except at fp16): by default OpenVINO stores
  weights as fp16 in the ``.bin``; an fp32 artifact must keep fp32 weights.
* the hint is always given, f32 included: on CPUs with bf16/AMX (or fp16 on ARM) the CPU plugin
  otherwise picks a lower execution precision on its own. ``lower`` compiles the IR once on this
  host and records what the plugin says it executes (``execution_precision``, and the compute
  layers by runtime precision), and the runner refuses a precision the CPU would not honour.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgest import Lowered, Target, TargetUnavailable
from edgest.quantization import is_quantized
from edgest_openvino import device
from edgest_openvino.device import DEVICE, HINTS, PLUGIN_DEFAULT, PRECISION_KEY
from edgest_openvino.quantizer import (
    ACTIVATION_SCHEMES,
    DEFAULT_ACTIVATION_SCHEME,
    DEFAULT_RANGES,
    OVERFLOW_FIXES,
    RANGES,
)

if TYPE_CHECKING:
    import torch

    from edgest.coverage import Coverage
    from edgest.quantization import Quantizer
    from edgest_openvino.quantizer import NNCFQuantizer


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


def export_ir(program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], xml: Path,
              hint: str = "f32") -> dict[str, Any]:
    """Convert a captured program to OpenVINO IR at ``xml`` (weights beside it in ``.bin``), built to run at ``hint``.

    Weights stay f32 except for an f16 IR; ``hint`` is stored in the IR's rt_info for the runner.
    """
    import openvino as ov

    with warnings.catch_warnings():
        # torch's pytree deprecation noise from run_decompositions inside the frontend
        warnings.simplefilter("ignore", FutureWarning)
        # openvino >= 2024 takes a torch.export.ExportedProgram directly (TorchFXPythonDecoder)
        model = ov.convert_model(program, example_input=example_inputs)
    shapes = _pin_static_shapes(model, example_inputs)
    model.set_rt_info(hint, PRECISION_KEY)
    ov.save_model(model, str(xml), compress_to_fp16=hint == "f16")
    bin_path = xml.with_suffix(".bin")
    xml_bytes = xml.stat().st_size
    bin_bytes = bin_path.stat().st_size if bin_path.exists() else 0
    ops = ov.Core().read_model(str(xml)).get_ordered_ops()  # what was written (f16 weights at fp16), not what was held
    return {
        "openvino_version": ov.get_version(),
        "device": DEVICE,
        "inference_precision": hint,
        "frontend": "pytorch (torch.export.ExportedProgram)",
        "compress_to_fp16": hint == "f16",
        # floating-point constants (weights); integer ones are shapes/indices
        "weights_dtypes": sorted({op.get_output_element_type(0).get_type_name() for op in ops
                                  if op.get_type_name() == "Constant" and op.get_output_element_type(0).is_real()}),
        "fake_quantize_ops": sum(op.get_type_name() == "FakeQuantize" for op in ops),
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


def host_execution(xml: Path) -> dict[str, Any]:
    """What the CPU plugin of this host executes the IR at ``xml`` in: compiled once, read back.

    ``execution_precision`` is the plugin's own reading (``INFERENCE_PRECISION_HINT`` of the
    compiled model), ``compute_layers_by_precision`` the runtime precision of its convolutions
    and matmuls (u8/i8 for int8 kernels), ``cpu_capabilities`` what the plugin says the CPU has.
    """
    import openvino as ov

    core = ov.Core()
    try:
        model = core.read_model(str(xml))
        asked = device.requested_hint(model)
        compiled = core.compile_model(model, DEVICE, device.compile_config(asked, 1))
        facts = device.execution_facts(compiled)
    except Exception as exc:  # noqa: BLE001 - the artifact is still valid; say why it was not measured
        return {"execution_precision": f"not measured: {(str(exc).strip().splitlines() or [''])[0][:160]}"}
    facts["cpu_capabilities"] = list(core.get_property(DEVICE, "OPTIMIZATION_CAPABILITIES"))
    if asked == PLUGIN_DEFAULT:
        facts["execution_note"] = (f"what stays float runs at the CPU plugin's default, {facts['execution_precision']} "
                                   "on this CPU (another CPU may pick another; --target-option precision=fp32 pins f32)")
    elif facts["execution_precision"] != asked:
        facts["execution_note"] = (f"this CPU cannot execute {asked}: the plugin would run {facts['execution_precision']}, "
                                   "so the checks here are not run; check it on a CPU that can (edgest bundle)")
    return facts


class OpenVINORunner(device.OpenVINORunner):
    """The device runner on this host, raising edgest's :class:`~edgest.TargetUnavailable`."""

    unavailable = TargetUnavailable


class OpenVINOTarget(Target):
    """OpenVINO IR run by the OpenVINO CPU plugin at fp32, fp16 or bf16; int8 through NNCF."""

    name = "openvino"
    artifact_format = "xml"
    description = "OpenVINO IR (convert_model from torch.export), CPU plugin at a pinned precision; int8 via NNCF"
    requires = ("openvino",)
    toolchain = ("openvino", "nncf")
    install_hint = "pip install -e plugins/edgest-openvino"
    precisions = ("fp32", "fp16", "bf16", "int8")
    #: float precisions are one IR run at another INFERENCE_PRECISION_HINT; at int8 the option pins what stays float
    #: (not given: the CPU plugin's default on each CPU)
    #: activation_ranges: NNCF's range estimator for int8 activations (edgest_openvino.quantizer.DEFAULT_RANGES);
    #: activation_scheme: asymmetric or symmetric int8 activations (edgest_openvino.quantizer.DEFAULT_ACTIVATION_SCHEME);
    #: overflow_fix: 7-bit weights where x86 without VNNI would saturate (auto: this CPU's; quantizer.overflow_fix)
    option_table: ClassVar[dict[str, tuple[Any, Any]]] = {
        "precision": (tuple(HINTS), "fp32"), "activation_ranges": (RANGES, DEFAULT_RANGES),
        "activation_scheme": (tuple(ACTIVATION_SCHEMES), DEFAULT_ACTIVATION_SCHEME),
        "overflow_fix": (OVERFLOW_FIXES, "auto")}
    option_precisions: ClassVar[dict[str, tuple[str, ...]]] = {
        "activation_ranges": ("int8",), "activation_scheme": ("int8",), "overflow_fix": ("int8",)}
    device_runner = "edgest_openvino.device"
    runtime_requirements = (("numpy", "openvino=={openvino}"),)
    _int8: NNCFQuantizer | None = None

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        xml = out_dir / "model.xml"
        details = export_ir(program, example_inputs, xml, self.hint(program))
        return Lowered(xml, {**details, **host_execution(xml)})

    def hint(self, program: torch.export.ExportedProgram) -> str:
        """The IR's INFERENCE_PRECISION_HINT: the ``precision`` option's, or for an int8 program without one
        :data:`~edgest_openvino.device.PLUGIN_DEFAULT` (what stays float at the plugin's own choice), except a
        ``--streaming`` step program's: its state loop stays float to keep each step's rounding out of the state
        it carries (:mod:`edgest_openvino.quantizer`), and bf16 would put it back, so that runs at f32."""
        step_program = self._int8 is not None and self._int8.states > 0
        if "precision" not in self.options and is_quantized(program) and not step_program:
            return PLUGIN_DEFAULT
        return HINTS[self.option("precision")]

    def load(self, path: Path, threads: int) -> OpenVINORunner:
        return OpenVINORunner(path, threads)

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        """Ops the PyTorch frontend converts and the CPU plugin takes (:mod:`edgest_openvino.coverage`)."""
        from edgest_openvino.coverage import coverage

        return coverage(program)

    def intermediates(self, path: Path, program: torch.export.ExportedProgram, inputs: Any, probes: Any) -> dict[str, Any]:
        """Module outputs as extra IR outputs on the CPU plugin (:mod:`edgest_openvino.intermediates`)."""
        from edgest_openvino.intermediates import intermediates

        return intermediates(path, program, inputs, probes)

    def quantizer(self, scheme: str) -> Quantizer | None:
        if scheme != "int8":
            return None
        from edgest_openvino.quantizer import NNCFQuantizer

        self._int8 = NNCFQuantizer(scheme, self.option("activation_ranges"), self.option("activation_scheme"),
                                   self.option("overflow_fix"))  # kept: lower asks it whether it quantised a step program
        return self._int8
