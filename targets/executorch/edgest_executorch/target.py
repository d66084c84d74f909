"""ExecuTorch target: ``to_edge_transform_and_lower`` (XNNPACK partitioner) → ``.pte`` → ``executorch.runtime``.

executorch is imported inside the methods, so this module is cheap to import and a missing
toolchain shows up as "unavailable", not as a broken CLI.

Threads: the runtime has one process-wide thread pool, shared by XNNPACK and the portable
kernels. It is sized once per process, before any method is loaded: resetting it while an
XNNPACK method is loaded crashes, and resetting it twice slows the method down. A later runner
in the same process that asks for another count gets the pool as it is, and reports that count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgest.errors import TargetUnavailable, Unsupported
from edgest.target import Lowered, Target

if TYPE_CHECKING:
    from edgest.quantization import Quantizer
    import numpy as np
    import torch

FLAVOURS = ("xnnpack", "portable")
#: option → (allowed values or type, default)
OPTIONS: dict[str, tuple[Any, Any]] = {
    "flavour": (FLAVOURS, "xnnpack"),
    "decompose_conv3d": (bool, True),
    "xnnpack_rewrites": (bool, True),
}

_POOL_THREADS: int | None = None


def set_threads_once(threads: int) -> int:
    """Size the runtime's thread pool on the first call in this process; returns the pool's size."""
    global _POOL_THREADS
    if _POOL_THREADS is None:
        rt = _pybindings()

        if rt._threadpool_get_thread_count() != threads:
            rt._unsafe_reset_threadpool(threads)
        _POOL_THREADS = int(rt._threadpool_get_thread_count())
    return _POOL_THREADS


def _first_line(exc: BaseException) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:200]


def _pybindings() -> Any:
    """ExecuTorch's runtime pybindings (the extension behind ``executorch.runtime``).

    ``executorch.runtime`` reaches them through ``portable_lib``, which imports the whole
    ``executorch.exir`` compiler for a warning class (5-10 s of imports that would land in
    the cold-load figure); the extension itself only needs libtorch loaded first.
    """
    import torch  # noqa: F401 - loads libtorch, which the extension links against
    from executorch.extension.pybindings import _C

    return _C


class ExecuTorchRunner:
    """The ``forward`` method of a ``.pte``, loaded and run by the ExecuTorch runtime.

    Same calls as ``executorch.runtime``'s ``Runtime.get().load_program(path)``,
    ``.load_method("forward")`` and ``.execute(inputs)``, made on the pybindings directly.
    """

    def __init__(self, path: Path, threads: int) -> None:
        from edgest_executorch.lowering import details_path

        self.path = Path(path)
        sidecar = details_path(self.path)
        self.details: dict[str, Any] = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        rt = _pybindings()
        self.threads = set_threads_once(threads)
        if self.details.get("delegated_nodes") and not rt._is_available("XnnpackBackend"):
            raise TargetUnavailable(
                "target 'executorch' unavailable: this ExecuTorch runtime has no XnnpackBackend "
                "(use flavour 'portable' or an executorch build with XNNPACK)"
            )
        if not self.path.is_file():
            raise Unsupported(f"no ExecuTorch program at {self.path}")
        try:
            self._program = rt._load_program(str(self.path), program_verification=rt.Verification.InternalConsistency)
            self._method = self._program.load_method("forward")
        except Exception as exc:  # noqa: BLE001 - the runtime raises RuntimeError with an error code only
            raise Unsupported(self._explain("load", exc)) from exc

    def _explain(self, stage: str, exc: BaseException) -> str:
        """The runtime's error plus the lowering warnings, which name the op that is to blame."""
        msg = f"ExecuTorch failed to {stage} {self.path.name}: {_first_line(exc)}"
        warns = [w for w in self.details.get("warnings", []) if "fail" in w]
        if warns:
            msg += "; likely cause: " + "; ".join(warns)
        return msg

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import numpy as np
        import torch

        tensors = [torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
        try:
            outs = self._method(tensors)  # outputs are copied out of the method's memory
        except Exception as exc:  # noqa: BLE001
            raise Unsupported(self._explain("run", exc)) from exc
        return [o.numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in outs]


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
