"""LiteRT target: ``litert_torch.convert`` → ``.tflite`` → LiteRT interpreter (XNNPACK delegate, CPU).

LiteRT (formerly TensorFlow Lite) is Android's standard on-device runtime. The target is built
only on edgest's public contract (``edgest.target``, ``edgest.quantization``, ``edgest.errors``):
it converts, runs and quantises with Google's own tools and nothing of edgest's core.

litert-torch and ai-edge-litert are imported inside the methods, so this module is cheap to
import and a missing toolchain shows up as "unavailable", not as a broken CLI.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest.target import Lowered, Target
from edgest_litert import device

if TYPE_CHECKING:
    import torch

    from edgest.coverage import Coverage
    from edgest.quantization import Quantizer

#: option → (allowed values or type, default)
OPTIONS: dict[str, tuple[Any, Any]] = {
    # run with LiteRT's default CPU delegate (XNNPACK), or with its builtin kernels only (for comparison)
    "xnnpack": (bool, True),
}


class LiteRTRunner(device.LiteRTRunner):
    """The device runner on this host, raising edgest's errors."""

    unsupported, bad_input = Unsupported, BadInput


class LiteRTTarget(Target):
    """LiteRT ``.tflite`` from litert-torch, run by the LiteRT interpreter with XNNPACK (or builtin kernels).

    Option ``xnnpack`` (default True): False runs LiteRT's builtin CPU kernels without the
    default delegate, to compare against. ``Lowered.details`` holds the converter version,
    op counts by TFLite kind, tensor counts by type (int8 ones after quantisation) and the
    model's inputs and outputs as the file declares them.

    Precision ``int8`` is PT2E with litert-torch's own ``PT2EQuantizer`` (see
    :mod:`edgest_litert.quantizer`), calibrated on edgest's calibration set; ``int8-weight`` is
    its dynamic-range scheme (int8 weights, activations quantised at run time).
    """

    name = "litert"
    artifact_format = "tflite"
    description = "LiteRT .tflite (litert-torch), LiteRT interpreter with XNNPACK, CPU"
    requires = ("litert_torch", "ai_edge_litert")
    runtime_modules = ("ai_edge_litert",)  # litert_torch is the converter (it imports torch and TensorFlow)
    toolchain = ("litert-torch", "ai-edge-litert")
    install_hint = "pip install -e 'targets/litert[convert]' torch==2.13.0, or make setup"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")
    device_runner = "edgest_litert.device"
    runtime_requirements = (("numpy", "ai-edge-litert=={ai-edge-litert}"),)
    option_table = OPTIONS

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        self.ensure_available()
        from edgest_litert.convert import convert

        path = out_dir / "model.tflite"
        return Lowered(path, convert(program, example_inputs, path))

    def load(self, path: Path, threads: int) -> LiteRTRunner:
        # running needs only the runtime (the converter may be absent where artifacts only run)
        if importlib.util.find_spec("ai_edge_litert") is None:
            raise TargetUnavailable(f"target 'litert' unavailable: ai_edge_litert not installed ({self.install_hint})")
        return LiteRTRunner(path, threads, xnnpack=self.option("xnnpack"))

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        """Ops litert-torch has a lowering for, after its decompositions (:mod:`edgest_litert.coverage`)."""
        self.ensure_available()
        from edgest_litert.coverage import coverage

        return coverage(program)

    def quantizer(self, scheme: str) -> Quantizer | None:
        """litert-torch's PT2E quantizer on the captured program: static int8 or dynamic-range (``int8-weight``)."""
        from edgest_litert.quantizer import quantizer_for

        return quantizer_for(scheme)
