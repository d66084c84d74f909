"""ExecuTorch target: ``to_edge_transform_and_lower`` (XNNPACK partitioner) → ``.pte`` → ``executorch.runtime``.

executorch is imported inside the methods, so this module is cheap to import and a missing
toolchain shows up as "unavailable", not as a broken CLI.

The runner lives in :mod:`edgest_executorch.device`, which device bundles run too (threads:
see there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgest.errors import TargetUnavailable, Unsupported
from edgest.target import Lowered, Target
from edgest_executorch import device

if TYPE_CHECKING:
    from edgest.coverage import Coverage
    from edgest.quantization import Quantizer
    import torch

FLAVOURS = ("xnnpack", "portable")
#: option → (allowed values or type, default)
OPTIONS: dict[str, tuple[Any, Any]] = {
    "flavour": (FLAVOURS, "xnnpack"),
    "decompose_conv3d": (bool, True),
    "xnnpack_rewrites": (bool, True),
}


class ExecuTorchRunner(device.ExecuTorchRunner):
    """The device runner on this host: edgest's errors, and the lowering details read from beside the ``.pte``."""

    unavailable, unsupported = TargetUnavailable, Unsupported

    def __init__(self, path: Path, threads: int) -> None:
        from edgest_executorch.lowering import details_path

        sidecar = details_path(Path(path))
        super().__init__(path, threads, json.loads(sidecar.read_text()) if sidecar.exists() else {})


class ExecuTorchTarget(Target):
    """ExecuTorch ``.pte``: XNNPACK-delegated (default) or portable kernels only, run by the ExecuTorch runtime.

    Options: ``flavour`` ("xnnpack" or "portable": no delegate, for comparison) and
    ``decompose_conv3d`` (default True: rewrite Conv3d as Conv2d so XNNPACK takes it) and
    ``xnnpack_rewrites`` (default True: layer norm, mean, N-D matmul, select/unbind, unmasked
    attention, tiled adaptive pooling and spiking-neuron thresholds rewritten into ops XNNPACK
    takes; see :mod:`edgest_executorch.rewrites`).
    ``Lowered.details`` reports how many nodes went to XNNPACK, the ops left on portable
    kernels and warnings for constructs that will not run.
    """

    name = "executorch"
    artifact_format = "pte"
    description = "ExecuTorch .pte (XNNPACK delegate, or portable kernels), ExecuTorch runtime CPU"
    requires = ("executorch", "torch")  # the bindings exchange torch tensors: import both before the cold-load clock
    toolchain = ("executorch",)
    install_hint = "pip install -e targets/executorch"
    device_runner = "edgest_executorch.device"
    #: the runtime links libtorch and imports a few modules of its exporter, hence torch and three
    #: small packages, without the rest of executorch's (exporter-side) dependencies
    runtime_requirements = (("numpy", "torch=={torch}", "ruamel.yaml", "flatbuffers", "tabulate"),
                            ("--no-deps", "executorch=={executorch}"))
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")

    def quantizer(self, scheme: str) -> Quantizer | None:
        """XNNPACK PT2E quantizer (static int8 or weight-only); the portable flavour has none."""
        from edgest_executorch.quantizer import quantizer_for

        return quantizer_for(scheme, self.option("flavour"))

    option_table = OPTIONS

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        self.ensure_available()
        from edgest_executorch.lowering import lower_to_pte, write_details

        path = out_dir / "model.pte"
        details = lower_to_pte(program, path, flavour=self.option("flavour"), decompose=self.option("decompose_conv3d"),
                              rewrite=self.option("xnnpack_rewrites"))
        write_details(path, details)
        return Lowered(path, details)

    def load(self, path: Path, threads: int) -> ExecuTorchRunner:
        self.ensure_available()
        return ExecuTorchRunner(path, threads)

    def intermediates(self, path: Path, program: torch.export.ExportedProgram, inputs: Any, probes: Any) -> dict[str, Any]:
        """Module outputs from the program lowered again with them as extra outputs (:mod:`edgest.debug.relower`):
        a delegated ``.pte`` keeps no per-layer tensors. Not for int8: an extra output inside a quantized pattern
        breaks XNNPACK's partition apart, and what runs then is not what the artifact computes."""
        from edgest.debug.relower import relowered
        from edgest.quantization import is_quantized

        if is_quantized(program):
            raise Unsupported("per-layer debug of int8 ExecuTorch runs is not supported: extra outputs break XNNPACK's "
                              "quantized partitions; debug the fp32 run, or the int8 run on another target")
        return relowered(self, program, inputs, probes)

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        """Which ops XNNPACK takes, which stay on portable kernels, which have no kernel (:mod:`edgest_executorch.coverage`)."""
        self.ensure_available()
        from edgest_executorch.coverage import coverage

        return coverage(program, self.option("flavour"), self.option("decompose_conv3d"), self.option("xnnpack_rewrites"))
