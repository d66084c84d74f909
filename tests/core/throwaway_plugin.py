"""A throwaway third-party plugin used by the plugin tests: one model, one target, one pass."""

from __future__ import annotations

from pathlib import Path

import torch

import edgest
from edgest import hookimpl
from edgest.targets.eager import EagerRunner


def tiny_mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


MODEL = edgest.ModelEntry(
    edgest.ModelSpec(name="tiny_mlp", family="test", input=edgest.InputSpec((2, 8), layout="B,C"), num_classes=4),
    "throwaway_plugin:tiny_mlp",
)


class PickleTarget(edgest.Target):
    """Saves the program with torch.export under another name: enough to prove the contract."""

    name = "throwaway"
    artifact_format = "pt2"
    requires = ("torch",)

    def lower(self, program, example_inputs, out_dir: Path) -> edgest.Lowered:
        path = out_dir / "throwaway.pt2"
        torch.export.save(program, str(path))
        return edgest.Lowered(path, {"lowered_by": "throwaway"})

    def load(self, path: Path, threads: int) -> EagerRunner:
        return EagerRunner(path, threads)


class ScaleOutputPass(edgest.Pass):
    """Multiplies the output by ``factor`` (a pass that visibly changes accuracy)."""

    name = "scale-output"
    option_table = {"factor": (float, 1.0)}

    def run(self, program, ctx) -> edgest.PassResult:
        factor = self.option("factor")
        module = program.module()

        class Scaled(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = module

            def forward(self, x):
                return self.inner(x) * factor

        new = torch.export.export(Scaled(), ctx.example_inputs, strict=False)
        return edgest.PassResult(new, factor != 1.0, f"scaled output by {factor}")


@hookimpl
def register_models(register) -> None:
    register(MODEL)


@hookimpl
def register_targets(register) -> None:
    register(PickleTarget)


@hookimpl
def register_passes(register) -> None:
    register(ScaleOutputPass)
