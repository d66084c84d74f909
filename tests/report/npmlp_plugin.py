"""A third-party-style edgest plugin for the bundle tests: target ``npmlp`` and model ``npmlp_tiny``.

Written only against edgest's public contract, as an outside plugin would be. The target
lowers a Linear-ReLU-Linear program to an ``.npz`` of its weights and runs it with
:mod:`npmlp_device` (NumPy only), which is also its ``device_runner``. ``npmlp_nobundle`` is
the same target without a device runner. Module-level names only: the check's child process
imports the target again by ``module:qualname``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import edgest
from edgest import Lowered, Target, Unsupported, hookimpl


def tiny_mlp() -> Any:
    """The model the tests compile: input (2, 8), output (2, 4)."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


NPMLP_TINY = edgest.ModelEntry(
    spec=edgest.ModelSpec(name="npmlp_tiny", family="test", input=edgest.InputSpec((2, 8)), num_classes=4),
    factory="npmlp_plugin:tiny_mlp",
)


class NumpyMLPTarget(Target):
    """Weights of a two-layer MLP in ``model.npz``, run by NumPy."""

    name = "npmlp"
    artifact_format = "npz"
    description = "test-only: a Linear-ReLU-Linear program as NumPy weights"
    device_runner = "npmlp_device"
    runtime_requirements = (("numpy",),)

    def lower(self, program: Any, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        state = {k: v.detach().numpy() for k, v in program.state_dict.items()}
        if sorted(state) != ["0.bias", "0.weight", "2.bias", "2.weight"]:
            raise Unsupported(f"target 'npmlp' lowers Linear-ReLU-Linear only, not a program with {sorted(state)}")
        path = out_dir / "model.npz"
        np.savez(path, w0=state["0.weight"], b0=state["0.bias"], w1=state["2.weight"], b1=state["2.bias"])
        return Lowered(path, {"layers": 2})

    def load(self, path: Path, threads: int) -> Any:
        import npmlp_device

        return npmlp_device.load(str(path), threads)


class NoBundleTarget(NumpyMLPTarget):
    """The same target from a plugin that provides no device runner."""

    name = "npmlp_nobundle"
    device_runner = ""
    runtime_requirements = ()


@hookimpl
def register_targets(register: Any) -> None:
    register(NumpyMLPTarget)
    register(NoBundleTarget)


@hookimpl
def register_models(register: Any) -> None:
    register(NPMLP_TINY)
