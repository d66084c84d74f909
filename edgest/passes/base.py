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
    #: option name → (allowed values as a tuple, or a type; default), as for targets
    #: (:mod:`edgest.options`). Options not in the table are refused; an empty table takes none.
    option_table: ClassVar[dict[str, tuple[Any, Any]]] = {}

    def __init__(self, **options: Any) -> None:
        from edgest.options import check_options

        #: the options as given, checked and typed by :attr:`option_table` (defaults not filled in)
        self.options = check_options(f"pass '{self.name}'", self.option_table, options)

    def option(self, key: str) -> Any:
        """The value of option ``key``: what the user gave, else the table's default."""
        return self.options.get(key, self.option_table[key][1])

    def rewrite_module(self, module: torch.nn.Module, example_inputs: tuple[Any, ...]) -> torch.nn.Module | None:
        """Optional, before capture: return a rewritten ``nn.Module`` (e.g. attention modules swapped), or None.

        Runs on the model before ``torch.export``; the pass's accuracy delta covers this step
        too, because the eager reference is taken from the untouched model.
        """
        return None

    @abstractmethod
    def run(self, program: torch.export.ExportedProgram, ctx: PassContext) -> PassResult:
        """Transform ``program``; never mutate the caller's copy in place."""
