"""``example-pt2``: the captured program saved as ``.pt2`` and run by PyTorch.

The runtime (torch) is imported inside :meth:`Pt2Target.lower` and in the runner, never at the
top of a module, so importing the plugin stays cheap and a missing runtime makes the target
*unavailable* with :attr:`Pt2Target.install_hint` instead of breaking edgest.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import edgest

if TYPE_CHECKING:
    import torch

    from edgest_example_target.device import Pt2Runner


class Pt2Target(edgest.Target):
    """ExportedProgram (.pt2) run by PyTorch on the CPU; option ``decompose`` lowers it to core ATen first."""

    name = "example-pt2"
    artifact_format = "pt2"
    description = "example plugin: the ExportedProgram saved as .pt2, run by PyTorch (option decompose=true: core ATen)"
    requires = ("torch",)
    install_hint = "pip install -e examples/target"
    precisions = ("fp32",)
    option_table = {"decompose": (bool, False)}
    device_runner = "edgest_example_target.device"
    runtime_requirements = (("numpy", "torch=={torch}"),)

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> edgest.Lowered:
        import torch

        if self.option("decompose"):
            with warnings.catch_warnings():  # torch 2.13 warns about its own LeafSpec while copying the program
                warnings.simplefilter("ignore", FutureWarning)
                program = program.run_decompositions()  # a new program: the caller's stays as it was
        buffer = io.BytesIO()  # serialise in memory: a full disk is then a clean OSError
        torch.export.save(program, buffer)
        path = out_dir / "model.pt2"
        path.write_bytes(buffer.getvalue())
        ops = sorted({str(n.target) for n in program.graph.nodes if n.op == "call_function"})
        return edgest.Lowered(path, {"decomposed": self.option("decompose"), "ops": ops})

    def load(self, path: Path, threads: int) -> Pt2Runner:
        from edgest_example_target.device import load

        if not Path(path).is_file():
            raise edgest.BadInput(f"artifact '{path}' does not exist; compile it again with --target {self.name}")
        return load(str(path), threads)
