"""Core AI target: ``coreai_torch.TorchConverter`` → ``model.aimodel``, run by Apple's Core AI runtime.

Core AI (macOS / iOS 27) succeeds Core ML. Unlike Core ML, its Python wheel (``coreai-core``)
carries an x86-64 build of the runtime, so the asset edgest writes is checked on Linux by Apple's
own runtime, not by a reference interpreter: the accuracy check runs and is labelled "Core AI
runtime (host build, not Apple hardware)". Its speed there says nothing about a Mac's or an
iPhone's, so the runner carries ``timing_unavailable`` and the latency check is *not run* with
that reason, except on macOS 27 where the OS runtime runs it and the timings are real.

Precisions: fp32 (default), fp16 and bf16 (:mod:`edgest_coreai.convert`), and int8 through
coreai-opt's ``Quantizer`` on the captured program (:mod:`edgest_coreai.quantizer`). The
``attention-to-conv`` pass (edgest's, target-agnostic) runs before lowering as for Core ML.

coreai-core, coreai-torch and coreai-opt are imported only inside methods, so this module is
cheap to import and a missing package shows up as "unavailable", not as a broken CLI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest.target import Lowered, Target
from edgest_coreai import device
from edgest_coreai.convert import PRECISIONS

if TYPE_CHECKING:
    import torch

    from edgest.quantization import Quantizer

#: the exact pre-release set this target is built and tested with
PINS = "coreai-core==1.0.0b3 coreai-torch==0.4.3 coreai-opt==0.4.0"
INSTALL = f"pip install --pre {PINS}"

OPTIONS: dict[str, tuple[Any, Any]] = {"precision": (PRECISIONS, "fp32")}


class CoreAIRunner(device.CoreAIRunner):
    """The device runner on this host, raising edgest's errors."""

    unavailable, unsupported, bad_input = TargetUnavailable, Unsupported, BadInput


def _unsupported(exc: Exception, program: Any) -> Unsupported | None:
    """The converter's "unsupported ATen ops: a, b" as edgest's one line naming the first op and where it came from."""
    from edgest.capture import op_origin

    m = re.search(r"unsupported ATen ops: (aten\.\w+(?:\.\w+)?)", str(exc))
    if not m:
        return None
    op = m.group(1)
    where = op_origin(program, op.rsplit(".", 1)[0])
    return Unsupported(f"cannot lower op {op}{f' (from {where})' if where else ''}: coreai-torch has no lowering for it; "
                       "see edgest_coreai.coverage.supported_ops()")


class CoreAITarget(Target):
    """Core AI ``.aimodel`` from coreai-torch; checked on Apple's bundled runtime anywhere, timed on macOS 27.

    Options: ``precision``: ``fp32`` (default), ``fp16`` or ``bf16`` (the same as ``--precision``).
    ``Lowered.details`` holds the asset summary (functions, interface, op counts, compute and
    storage types), the files and their SHA-256 (``sha256_tree``), coreai versions, timings and
    the distinct warnings raised.
    """

    name = "coreai"
    artifact_format = "aimodel"
    description = ("Apple Core AI (.aimodel, coreai-torch; pre-release coreai-core 1.0.0b3); checked on Apple's "
                   "bundled runtime, timed on macOS 27")
    requires = ("coreai", "coreai_torch", "coreai_opt")
    toolchain = ("coreai-core", "coreai-torch", "coreai-opt")
    install_hint = INSTALL
    device_runner = "edgest_coreai.device"
    runtime_requirements = (("numpy", "coreai-core=={coreai-core}"),)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16", "int8")
    default_precision: ClassVar[str] = "fp32"
    option_table = OPTIONS

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        self.ensure_available()
        from edgest_coreai.convert import convert

        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "model.aimodel"
        try:
            details = convert(program, example_inputs, path, self.option("precision"))
        except ValueError as exc:
            named = _unsupported(exc, program)
            if named is None:
                raise
            raise named from exc
        details["precision"] = self.option("precision")
        details["runs_here"] = "Core AI on Apple hardware" if device.on_apple_runtime() else device.HOST_LABEL
        return Lowered(path, details)

    def load(self, path: Path, threads: int) -> CoreAIRunner:
        self.ensure_available()
        return CoreAIRunner(path)

    def coverage(self, program: torch.export.ExportedProgram) -> Any:
        """Ops the converter lowers, from its own table (:func:`edgest_coreai.coverage.coverage`)."""
        self.ensure_available()
        from edgest_coreai.coverage import coverage

        return coverage(program)

    def quantizer(self, scheme: str) -> Quantizer | None:
        """Static int8 (weights and activations) with coreai-opt's ``Quantizer``, calibrated on edgest's clips."""
        if scheme != "int8":
            return None
        from edgest_coreai.quantizer import CoreAIOptQuantizer

        return CoreAIOptQuantizer(scheme)
