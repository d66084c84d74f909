"""The quantisation contract: a target hands out a :class:`Quantizer` for a scheme, or None.

A quantizer works at one of two stages:

* ``"program"`` (:class:`ProgramQuantizer`): on the captured ``ExportedProgram`` before
  lowering, e.g. PT2E prepare → calibrate → convert with the target's quantizer. It returns a
  new program with quantize/dequantize ops; the quantize stage measures its accuracy delta on
  that program in eager PyTorch, like any other pass.
* ``"artifact"`` (:class:`ArtifactQuantizer`): on the file the target lowered, e.g. ONNX
  Runtime's static QDQ quantisation. It runs after ``lower``, writes the quantised artifact in
  place of the float one, and its delta is float artifact vs quantised artifact, both run by
  the target's own runner in the isolated check process.

Either way the final accuracy check compares the artifact with eager float PyTorch, under the
limits of the compile's precision (``LIMITS["int8"]`` for ``--precision int8``).

Targets opt in with :meth:`edgest.target.Target.quantizer` and by listing ``"int8"`` in
``precisions``. This module imports nothing heavy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    import torch

    from edgest.data.calibration import CalibrationSet

#: quantisation schemes a target may offer: static int8 (weights and activations) and weight-only int8
SCHEMES: tuple[str, ...] = ("int8", "int8-weight")
#: the pass that quantises, and the precision whose accuracy limits its result is checked against
PASS_NAME = "quantize"
PRECISION = "int8"

Stage = Literal["program", "artifact"]


@dataclass(frozen=True)
class Quantized:
    """What a quantizer did: a one-line summary and JSON-able details (settings and why, counts).

    ``program`` is set by program-stage quantizers only.
    """

    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    program: torch.export.ExportedProgram | None = None


class Quantizer(ABC):
    """Base class: one scheme for one target. Subclass :class:`ProgramQuantizer` or :class:`ArtifactQuantizer`."""

    stage: ClassVar[Stage]
    #: for a ``--streaming`` step program: how many trailing inputs are recurrent state (output ``j + 1`` is
    #: fed back as input ``j + 1``); 0 for a whole-input program. Set by the quantize stage before it calls the
    #: quantizer. A program quantizer keeps :func:`edgest.quantize.state_loop` of its graph float; an artifact
    #: quantizer the same rule on its own graph (:func:`edgest.quantize.loop_of`).
    states: int = 0

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme


class ProgramQuantizer(Quantizer):
    """Quantises the captured program before lowering."""

    stage: ClassVar[Stage] = "program"

    @abstractmethod
    def quantize_program(
        self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...],
        calibration: CalibrationSet, skip: Sequence[str],
    ) -> Quantized:
        """Return a new program (in ``Quantized.program``); modules named in ``skip`` stay float."""


class ArtifactQuantizer(Quantizer):
    """Quantises the lowered artifact."""

    stage: ClassVar[Stage] = "artifact"

    @abstractmethod
    def quantize_artifact(self, src: Path, dst: Path, calibration: CalibrationSet, skip: Sequence[str]) -> Quantized:
        """Write the quantised artifact to ``dst`` (``src`` is left as it is); modules in ``skip`` stay float."""


@dataclass(frozen=True)
class ArtifactStep:
    """An artifact-stage quantisation the quantize stage chose, handed to the stage after ``lower``.

    A value returned from one stage to the next (never state kept on a pass). ``layers`` is set
    when a sensitivity table was asked for (see :func:`edgest.quantize.sensitivity.sensitivity`).
    """

    quantizer: ArtifactQuantizer
    calibration: CalibrationSet
    skip: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)
    layers: tuple[str, ...] | None = None
