"""The contract every target implements: lower a captured program, load a runner.

A target names itself with a class attribute, lists the modules it needs, and imports its
toolchain lazily inside :meth:`Target.lower` and :meth:`Target.load`, so a missing toolchain
makes the target *unavailable* (with an install hint) instead of breaking edgest.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from edgest.errors import TargetUnavailable

if TYPE_CHECKING:
    import numpy as np
    import torch

    from edgest.coverage import Coverage
    from edgest.debug.probes import Probe
    from edgest.quantization import Quantizer


class Runner(Protocol):
    """A loaded artifact: numpy arrays in, numpy arrays out."""

    threads: int

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one inference."""
        ...


@dataclass(frozen=True)
class Lowered:
    """What :meth:`Target.lower` produced: the main file (inside ``out_dir``) and facts about it."""

    path: Path
    details: dict[str, Any] = field(default_factory=dict)


class Target(ABC):
    """Base class for targets. Subclasses set ``name`` and ``artifact_format``."""

    name: ClassVar[str]
    artifact_format: ClassVar[str]
    description: ClassVar[str] = ""
    #: modules that must be importable for the target to work on this host
    requires: ClassVar[tuple[str, ...]] = ()
    #: modules the runner needs (a subset of ``requires``): the check process imports them before the cold-load
    #: clock starts, and nothing else of the toolchain. None: all of ``requires``. A converter that imports torch
    #: (onnxsim, litert_torch) listed here would cost every check process seconds for nothing.
    runtime_modules: ClassVar[tuple[str, ...] | None] = None
    #: distributions whose versions are recorded in the artifact
    toolchain: ClassVar[tuple[str, ...]] = ()
    install_hint: ClassVar[str] = ""
    #: precisions ``compile`` accepts for this target; list "int8" only with a :meth:`quantizer`
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    #: what ``compile`` builds when no precision is asked for
    default_precision: ClassVar[str] = "fp32"
    #: dotted name of a one-file module in this target's package that runs its artifacts on a device
    #: with only NumPy and the runtime installed (no edgest). It defines ``load(path: str, threads: int)``
    #: returning a :class:`Runner`. ``edgest bundle`` copies its source into the bundle; empty means
    #: this target makes no device bundles.
    device_runner: ClassVar[str] = ""
    #: pip argument lists, run in order on a device, that install the runtime and NumPy. An item
    #: ``dist=={dist}`` is pinned to the version of ``dist`` that built the artifact (its toolchain).
    runtime_requirements: ClassVar[tuple[tuple[str, ...], ...]] = ()

    #: False when :meth:`coverage` answers without the toolchain ``requires`` names (from a documented op table):
    #: ``edgest check`` then asks it even where :meth:`unavailable_reason` says the target cannot work here,
    #: and its note says so. True (the default): an unavailable target's column is "unavailable".
    coverage_needs_runtime: ClassVar[bool] = True

    #: option name → (allowed values as a tuple, or a type; default). Targets that declare a table get
    #: their constructor options checked (one-line BadInput) and :meth:`option` defaults for free.
    option_table: ClassVar[dict[str, tuple[Any, Any]]] = {}
    #: option name → the precisions it acts at (an int8 calibration setting: ``("int8",)``). A compile at
    #: another precision that names it is refused with one line instead of ignoring it; a bench gives it
    #: to those cells only (:func:`edgest.target_options.options_at`). Options not listed act at every precision.
    option_precisions: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, **options: Any) -> None:
        for key, value in options.items() if self.option_table else ():
            self._check_option(key, value)
        self.options = options

    def _check_option(self, key: str, value: Any) -> None:
        from edgest.options import check_option

        check_option(self.name, self.option_table, key, value)

    def option(self, key: str) -> Any:
        """The value of option ``key``: what the user gave, else the table's default."""
        return self.options.get(key, self.option_table[key][1])

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this target cannot work here, or None when it can."""
        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        if missing:
            hint = f" ({cls.install_hint})" if cls.install_hint else ""
            return f"{', '.join(missing)} not installed{hint}"
        return None

    @classmethod
    def host_unavailable_reason(cls) -> str | None:
        """Why artifacts of this target cannot *run* on this host (e.g. Core ML off macOS), or None.

        Asked in the check process before the runtime is imported, so a host that can only
        build (not run) does not pay for importing the toolchain just to find that out.
        """
        return None

    @classmethod
    def toolchain_versions(cls) -> dict[str, str]:
        """Installed versions of the distributions in ``toolchain`` (and torch)."""
        out: dict[str, str] = {}
        for dist in ("torch", *cls.toolchain):
            try:
                out[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                out[dist] = "not installed"
        return out

    def ensure_available(self) -> None:
        """Raise :class:`TargetUnavailable` naming what is missing and how to install it."""
        reason = self.unavailable_reason()
        if reason:
            raise TargetUnavailable(f"target '{self.name}' unavailable: {reason}")

    @abstractmethod
    def lower(
        self, program: torch.export.ExportedProgram, example_inputs: tuple[torch.Tensor, ...], out_dir: Path
    ) -> Lowered:
        """Write the artifact into ``out_dir`` and describe it."""

    @abstractmethod
    def load(self, path: Path, threads: int) -> Runner:
        """Load an artifact for inference on this host; raise TargetUnavailable if it cannot run here."""

    def quantizer(self, scheme: str) -> Quantizer | None:
        """The quantizer for ``scheme`` ("int8", "int8-weight"), or None when this target has none.

        Return a :class:`~edgest.quantization.ProgramQuantizer` (works on the captured program,
        e.g. PT2E with the backend's quantizer) or an :class:`~edgest.quantization.ArtifactQuantizer`
        (works on the lowered file, e.g. ONNX Runtime's QDQ quantisation). Import the toolchain
        inside the quantizer's methods, not here. The ``quantize`` pass turns None into an
        Unsupported error naming this target and its precisions.
        """
        return None

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage | None:
        """What this target would do with each op of ``program``, without compiling it; None: not known.

        Optional (``edgest check`` asks it). Answer from the toolchain's own knowledge (a
        partitioner, an op registry, a frontend's convert table) in seconds, as an
        :class:`~edgest.coverage.Coverage` of verdicts native / delegated / fallback /
        unsupported per ATen op; :func:`edgest.coverage.judged` maps the nodes of a transformed
        program back to the captured ones. ``program`` is this call's own copy: transform it freely.
        """
        return None

    def intermediates(self, path: Path, program: torch.export.ExportedProgram, inputs: Sequence[Sequence[np.ndarray]],
                      probes: Sequence[Probe]) -> dict[str, list[np.ndarray]]:
        """The artifact's value of each probe (a PyTorch module's output) on each input set, keyed by ``probe.module``.

        Optional (``edgest debug`` asks it). ``path`` is the artifact, ``program`` the captured
        program it was lowered from (passes applied; each probe's ``node`` is one of its nodes), and
        ``inputs`` the input sets. Expose the tensors as extra outputs of the artifact (or run it
        op by op) and leave out probes it has no tensor for; :func:`edgest.debug.module_exits` finds
        module outputs in a graph whose nodes carry their module paths.
        """
        from edgest.errors import Unsupported

        raise Unsupported(f"per-layer debug not supported by target '{self.name}' (it defines no Target.intermediates)")
