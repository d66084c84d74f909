"""Core ML target: ``coremltools.convert(ExportedProgram)`` → ML Program ``model.mlpackage``.

Lowering works on any host with coremltools. *Running* a Core ML model needs Apple's Core ML
framework, i.e. macOS: there :meth:`CoreMLTarget.load` returns a runner on ``MLModel.predict``
with the chosen compute units (:mod:`edgest_coreml.device`, which device bundles run on a Mac). On any other host it returns the NumPy MIL reference
interpreter (:mod:`edgest_coreml.mil_reference`), which runs the program and weights read back
from the saved package: the accuracy check runs and is labelled "MIL reference (not the Core
ML runtime)", while the latency check is "not run: needs macOS" (an interpreter's speed says
nothing about Core ML's). A program with an op the interpreter lacks is reported as not
checked, naming the op, never as passed.

coremltools is imported only inside methods, so this module is cheap to import and a missing
toolchain shows up as "unavailable", not as a broken CLI.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest.target import Lowered, Target
from edgest_coreml import device

if TYPE_CHECKING:
    import torch

    from edgest.coverage import Coverage
    from edgest.quantization import Quantizer
    from edgest_coreml.mil_reference import MILReferenceRunner

#: option → (allowed values, default); mirrors ct.target / ct.precision / ct.ComputeUnit of coremltools 9
OPTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "precision": (("fp16", "fp32"), "fp16"),
    "minimum_deployment_target": (
        ("iOS15", "iOS16", "iOS17", "iOS18", "iOS26", "macOS12", "macOS13", "macOS14", "macOS15", "macOS26",
         "watchOS8", "watchOS9", "watchOS10", "watchOS11", "watchOS26", "tvOS15", "tvOS16", "tvOS17", "tvOS18", "tvOS26"),
        "iOS17",
    ),
    "compute_units": (("ALL", "CPU_ONLY", "CPU_AND_NE", "CPU_AND_GPU"), "ALL"),
    "compress": (("none", "linear-int8", "palettize-8", "palettize-6", "palettize-4", "int4-block"), "none"),
    "int8_scheme": (("symmetric", "affine"), "symmetric"),
}


def cannot_run_here() -> str | None:
    """Why Core ML prediction is impossible on this host, or None on macOS."""
    if sys.platform == "darwin":
        return None
    return (
        f"target 'coreml' cannot run here: Core ML prediction needs macOS (this host is {platform.system() or sys.platform}); "
        "the .mlpackage is built — run it on a Mac or with an edgest device bundle"
    )


def timing_unavailable_here() -> str:
    """The latency check's reason off macOS (the accuracy check runs on the MIL reference there)."""
    return (f"not run: needs macOS (Core ML prediction; this host is {platform.system() or sys.platform}); "
            "accuracy was checked with the MIL reference interpreter, whose speed says nothing about Core ML's")


class CoreMLRunner(device.CoreMLRunner):
    """The device runner on this host (macOS only), raising edgest's errors."""

    unavailable, unsupported, bad_input = TargetUnavailable, Unsupported, BadInput

    def __init__(self, path: Path, compute_units: str = "ALL") -> None:
        reason = cannot_run_here()
        if reason:
            raise TargetUnavailable(reason)
        super().__init__(path, compute_units)


def _compressed(path: Path, scheme: str) -> dict[str, Any]:
    """Compress the package's weights in place; the details that change with it."""
    import coremltools as ct

    from edgest_coreml.compress import compress
    from edgest_coreml.convert import mil_op_counts, tree_sha256

    compression = compress(path, scheme)
    return {"compression": compression, "mil_ops": mil_op_counts(ct.utils.load_spec(str(path))),
            "sha256_tree": tree_sha256(path),
            "files": sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())}


class CoreMLTarget(Target):
    """Core ML ML Program (``.mlpackage``) from ``coremltools.convert``; predicts on macOS.

    Options (JSON-able):
    - ``precision``: ``fp16`` (default, ``compute_precision=FLOAT16``) or ``fp32`` (``FLOAT32``).
      Inputs and outputs stay float32 at both precisions; ``details["precision"]`` records it,
      and the accuracy check applies that precision's limits.
    - ``minimum_deployment_target``: a ``coremltools.target`` name, default ``iOS17``
      (ML Programs need iOS15 / macOS12 or newer).
    - ``compute_units``: ``ALL`` (default), ``CPU_ONLY``, ``CPU_AND_NE`` or ``CPU_AND_GPU``;
      a load-time setting (the package does not store it), used by the runner on macOS.
    - ``compress``: weight compression with ``coremltools.optimize.coreml`` after conversion:
      ``none`` (default), ``linear-int8`` (per-channel symmetric), ``palettize-8`` / ``-6`` / ``-4``
      (k-means look-up tables), ``int4-block`` (per-block of 32; needs an iOS18 target).
      ``details["compression"]`` records the weight bytes before and after; the accuracy check
      judges the compressed package (at the float precision's limits).
    - ``int8_scheme`` (``int8`` only): ``symmetric`` (default; coremltools' and Apple's default) or ``affine``
      (zero points: uint8 activations use their whole range; weights get one per channel too).

    Precision ``int8`` (``edgest compile --precision int8``) is W8A8 through the ``quantize`` pass
    and :meth:`quantizer` (PT2E with ExecuTorch's CoreMLQuantizer), then the usual conversion.

    Off macOS :meth:`load` gives the MIL reference interpreter instead of Core ML (see the module
    docstring).

    ``Lowered.details`` holds the MIL op counts (total, non-const, top 10 types), the
    deployment target and spec version, compute precision and units, coremltools' version,
    the package's interface as read back, a SHA-256 over the package's files
    (``sha256_tree``), timings and the distinct warnings coremltools and torch raised.
    """

    name = "coreml"
    artifact_format = "mlpackage"
    description = "Core ML ML Program (.mlpackage, coremltools); predicts on macOS, MIL reference check elsewhere"
    requires = ("coremltools",)
    toolchain = ("coremltools",)
    install_hint = "pip install -e targets/coreml"
    device_runner = "edgest_coreml.device"
    runtime_requirements = (("numpy", "coremltools=={coremltools}"),)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8")
    default_precision: ClassVar[str] = "fp16"

    option_table = OPTIONS
    option_precisions: ClassVar[dict[str, tuple[str, ...]]] = {"int8_scheme": ("int8",)}

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        self.ensure_available()
        from edgest_coreml.convert import SPEC_VERSIONS, convert

        scheme, deployment_target = self.option("compress"), self.option("minimum_deployment_target")
        if scheme != "none":
            from edgest_coreml.compress import check_scheme

            check_scheme(scheme, SPEC_VERSIONS[deployment_target], deployment_target)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "model.mlpackage"
        details = convert(program, example_inputs, path, precision=self.option("precision"),
                          deployment_target=deployment_target, compute_units=self.option("compute_units"))
        if scheme != "none":
            details.update(_compressed(path, scheme))
        details["precision"] = self.option("precision")
        details["runs_here"] = cannot_run_here() is None
        if not details["runs_here"]:
            details["numerics"] = ("checked by the MIL reference interpreter (NumPy, the package's own program and "
                                   "weights), not by the Core ML runtime, which needs macOS")
        return Lowered(path, details)

    def quantizer(self, scheme: str) -> Quantizer | None:
        """W8A8 (``int8``) through PT2E with ExecuTorch's CoreMLQuantizer; works off macOS (see quantizer.py)."""
        if scheme != "int8":
            return None
        from edgest_coreml.quantizer import CoreMLPT2EQuantizer

        return CoreMLPT2EQuantizer(scheme, self.option("int8_scheme"))

    def load(self, path: Path, threads: int) -> CoreMLRunner | MILReferenceRunner:
        self.ensure_available()
        if cannot_run_here():
            from edgest_coreml.mil_reference import MILReferenceRunner

            return MILReferenceRunner(path, timing_unavailable=timing_unavailable_here())
        return CoreMLRunner(path, compute_units=self.option("compute_units"))

    def intermediates(self, path: Path, program: torch.export.ExportedProgram, inputs: Any, probes: Any) -> dict[str, Any]:
        """Module outputs from the MIL reference interpreter, op by op (:mod:`edgest_coreml.intermediates`)."""
        self.ensure_available()
        from edgest_coreml.intermediates import intermediates

        return intermediates(path, inputs, probes)

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        """Ops coremltools' torch frontend has a converter for (:mod:`edgest_coreml.coverage`)."""
        self.ensure_available()
        from edgest_coreml.coverage import coverage

        return coverage(program)
