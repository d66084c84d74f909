"""The pass contract: captured program in, new program and a record out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch

    from edgest.target import Target


@dataclass(frozen=True)
class PassContext:
    """What a pass may look at besides the program: the target and example inputs."""

    target: Target
    example_inputs: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PassResult:
    """A pass's output program, whether it changed anything, a one-line summary and optional details."""

    program: torch.export.ExportedProgram
    modified: bool
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Pass(ABC):
    """Base class for passes; subclasses set ``name`` (lowercase, dashes allowed)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abstractmethod
    def run(self, program: torch.export.ExportedProgram, ctx: PassContext) -> PassResult:
        """Transform ``program``; never mutate the caller's copy in place."""
