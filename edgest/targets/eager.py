"""The reference target: the captured program run by plain PyTorch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.hookspecs import hookimpl
from edgest.target import Lowered, Target

if TYPE_CHECKING:
    import numpy as np
    import torch

    from edgest.coverage import Coverage


class EagerRunner:
    """Runs an ``ExportedProgram`` saved with ``torch.export.save``."""

    def __init__(self, path: Path, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.threads = threads
        self._module: Callable[..., Any] = torch.export.load(str(path)).module()

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        from edgest.checks.outputs import flatten_outputs

        with torch.no_grad():
            out = self._module(*(torch.from_numpy(x) for x in inputs))
        return flatten_outputs(out, "the captured program")  # tuples, lists and dicts in the eager reference's order


class EagerTarget(Target):
    """Plain PyTorch: the baseline every other target is compared with."""

    name = "eager"
    artifact_format = "pt2"
    description = "PyTorch eager (torch.export program), the reference"
    requires = ("torch",)

    def lower(
        self, program: torch.export.ExportedProgram, example_inputs: tuple[torch.Tensor, ...], out_dir: Path
    ) -> Lowered:
        import torch

        import io

        path = out_dir / "model.pt2"
        # serialise in memory, then write with Python: a full disk raises a clean OSError instead of
        # a C++ writer error followed by an abort when the writer is destroyed
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        path.write_bytes(buffer.getvalue())
        return Lowered(path, {"nodes": len(program.graph.nodes)})

    def load(self, path: Path, threads: int) -> EagerRunner:
        return EagerRunner(path, threads)

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        """PyTorch runs every op of the program it captured: all native."""
        from edgest.coverage import judged

        return judged(self.name, program, None, lambda node: ("native", ""), "PyTorch runs the captured program as it is")


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    register(EagerTarget)
