"""ExecuTorch runtime runner for ``.pte`` programs, shared by the host checks and device bundles.

Needs only NumPy, torch (the runtime's Python bindings link libtorch and exchange torch
tensors) and executorch's runtime (no edgest): ``edgest bundle`` copies this file into a bundle
as the device runner, and :meth:`edgest_executorch.target.ExecuTorchTarget.load` uses a
subclass that raises edgest's errors and reads the lowering details beside the ``.pte``.

Threads: the runtime has one process-wide thread pool, shared by XNNPACK and the portable
kernels. It is sized once per process, before any method is loaded: resetting it while an
XNNPACK method is loaded crashes, and resetting it twice slows the method down. A later runner
in the same process that asks for another count gets the pool as it is, and reports that count.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_POOL_THREADS: int | None = None


def pybindings() -> Any:
    """ExecuTorch's runtime pybindings (the extension behind ``executorch.runtime``).

    ``executorch.runtime`` reaches them through ``portable_lib``, which imports the whole
    ``executorch.exir`` compiler for a warning class (5-10 s of imports that would land in
    the cold-load figure); the extension itself only needs libtorch loaded first.
    """
    import torch  # noqa: F401 - loads libtorch, which the extension links against
    from executorch.extension.pybindings import _C

    return _C


def set_threads_once(threads: int) -> int:
    """Size the runtime's thread pool on the first call in this process; returns the pool's size."""
    global _POOL_THREADS
    if _POOL_THREADS is None:
        rt = pybindings()

        if rt._threadpool_get_thread_count() != threads:
            rt._unsafe_reset_threadpool(threads)
        _POOL_THREADS = int(rt._threadpool_get_thread_count())
    return _POOL_THREADS


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (the runtime's are long)."""
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:200]


class ExecuTorchRunner:
    """The ``forward`` method of a ``.pte``, loaded and run by the ExecuTorch runtime.

    Same calls as ``executorch.runtime``'s ``Runtime.get().load_program(path)``,
    ``.load_method("forward")`` and ``.execute(inputs)``, made on the pybindings directly.
    ``details`` are the lowering's (delegated nodes, warnings): they sharpen error messages.
    """

    #: raised when the runtime lacks a backend the program needs / cannot load or run it
    unavailable: type[Exception] = RuntimeError
    unsupported: type[Exception] = RuntimeError

    def __init__(self, path: str | Path, threads: int, details: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.details: dict[str, Any] = dict(details or {})
        rt = pybindings()
        self.threads = set_threads_once(threads)
        if self.details.get("delegated_nodes") and not rt._is_available("XnnpackBackend"):
            raise self.unavailable(
                "target 'executorch' unavailable: this ExecuTorch runtime has no XnnpackBackend "
                "(use flavour 'portable' or an executorch build with XNNPACK)"
            )
        if not self.path.is_file():
            raise self.unsupported(f"no ExecuTorch program at {self.path}")
        try:
            self._program = rt._load_program(str(self.path), program_verification=rt.Verification.InternalConsistency)
            self._method = self._program.load_method("forward")
        except Exception as exc:  # noqa: BLE001 - the runtime raises RuntimeError with an error code only
            raise self.unsupported(self._explain("load", exc)) from exc

    def _explain(self, stage: str, exc: BaseException) -> str:
        """The runtime's error plus the lowering warnings, which name the op that is to blame."""
        msg = f"ExecuTorch failed to {stage} {self.path.name}: {first_line(exc)}"
        warns = [w for w in self.details.get("warnings", []) if "fail" in w]
        if warns:
            msg += "; likely cause: " + "; ".join(warns)
        return msg

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One call of ``forward``; every output as a NumPy array."""
        import numpy as np
        import torch

        tensors = [torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
        try:
            outs = self._method(tensors)  # outputs are copied out of the method's memory
        except Exception as exc:  # noqa: BLE001
            raise self.unsupported(self._explain("run", exc)) from exc
        return [o.numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in outs]


def load(path: str, threads: int) -> ExecuTorchRunner:
    """The device-runner entry point: ``forward`` of the ``.pte`` at ``path`` on a ``threads``-sized pool."""
    return ExecuTorchRunner(path, threads)
