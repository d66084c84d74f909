"""Intermediate outputs for targets whose artifact hides them: lower the program again with the probes as outputs.

A compiled library or a delegated program keeps no per-layer tensors. What it computes is fixed by
the program it was lowered from, so a target can lower that program once more, with each probe's
node added to the graph's outputs, through its own :meth:`~edgest.target.Target.lower` and
:meth:`~edgest.target.Target.load`, and read the probes off the extra outputs. The values are those
of the same program through the same toolchain; an extra output can stop a fusion at that point.
A target opts in with one line::

    def intermediates(self, path, program, inputs, probes):
        return relowered(self, program, inputs, probes)
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgest.debug.probes import Probe

if TYPE_CHECKING:
    import torch

    from edgest.target import Target


def program_with_outputs(program: torch.export.ExportedProgram, nodes: Sequence[str],
                         example: tuple[torch.Tensor, ...]) -> torch.export.ExportedProgram:
    """``program`` recaptured to return its outputs, then the values of ``nodes`` (in that order)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch 2.13 warns about its own LeafSpec when copying a program
        warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
        module = program.module()
    graph = module.graph
    by_name = {n.name: n for n in graph.nodes}
    wanted = [by_name[name] for name in nodes]
    out = next(n for n in graph.nodes if n.op == "output")
    flat = list(out.args[0]) if isinstance(out.args[0], (tuple, list)) else [out.args[0]]
    out.args = (tuple(flat + wanted),)
    codegen = graph._codegen  # the outputs' pytree changed: return the plain tuple
    if getattr(codegen, "pytree_info", None) is not None:
        codegen.pytree_info = codegen.pytree_info._replace(out_spec=None)
    graph.lint()
    module.recompile()

    class Probed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(self.inner(*args))

    return torch.export.export(Probed(), example, strict=False)


def relowered(target: Target, program: torch.export.ExportedProgram, inputs: Sequence[Sequence[np.ndarray]],
              probes: Sequence[Probe]) -> dict[str, list[np.ndarray]]:
    """Lower ``program`` with every probe as an extra output through ``target`` and run it; module → value per input set."""
    import torch

    outputs = {s.arg.name for s in program.graph_signature.output_specs if hasattr(s.arg, "name")}
    extra = list(dict.fromkeys(p.node for p in probes if p.node not in outputs))
    example = tuple(torch.from_numpy(np.asarray(x)) for x in inputs[0])
    probed = program_with_outputs(program, extra, example)
    first = len(program.graph_signature.user_outputs)
    position = {node: first + i for i, node in enumerate(extra)}
    position.update({name: i for i, name in enumerate(program.graph_signature.user_outputs)})
    with tempfile.TemporaryDirectory(prefix="edgest-debug-") as tmp:
        lowered = target.lower(probed, example, Path(tmp))
        runner = target.load(lowered.path, 1)
        runs = [runner.run([np.asarray(x) for x in xs]) for xs in inputs]
    return {p.module: [np.asarray(r[position[p.node]]) for r in runs] for p in probes if p.node in position}
