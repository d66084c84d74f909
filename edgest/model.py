"""Model entries, building a model and loading its weights.

A model plugin registers a :class:`ModelEntry`: a :class:`~edgest.records.ModelSpec` plus a
factory that builds the ``nn.Module``. The factory is imported lazily so that listing models
does not import every model file.
"""

from __future__ import annotations

import importlib
import pickle
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput, PluginError
from edgest.records import ModelSpec

if TYPE_CHECKING:
    import torch

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its spec and how to build it.

    ``factory`` is either a callable or a ``"module:function"`` string imported on first use;
    it is called with ``**spec.config``.
    """

    spec: ModelSpec
    factory: Callable[..., Any] | str

    @property
    def name(self) -> str:
        return self.spec.name

    def __post_init__(self) -> None:
        if not _NAME.match(self.spec.name):
            raise PluginError(f"model name '{self.spec.name}' must be lowercase [a-z0-9_]")

    def build(self) -> torch.nn.Module:
        """Build the model in eval mode from its deterministic initialisation."""
        import torch

        factory = self.factory
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        torch.manual_seed(0)
        return factory(**self.spec.config).eval()


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load a state dict saved with ``torch.save`` (safe loader: tensors only).

    Raises :class:`BadInput` naming the file and the missing, unexpected or mismatched keys.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"weights file '{path}' does not exist; pass --weights an existing .pt file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error below says enough
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        blocked = "GLOBAL" in str(exc) or "global" in str(exc)
        what = ("it holds Python objects other than tensors, which the safe loader (weights_only=True) refuses"
                if blocked else "it is not a file written by torch.save (corrupt or another format)")
        raise BadInput(f"cannot read weights '{path}': {what}; save a state_dict with torch.save(model.state_dict(), path)") from None
    except Exception as exc:  # corrupt zip, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(
            f"cannot read weights '{path}': {first[:200]}; "
            "save a state_dict with torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInput(f"weights '{path}' is not a state_dict of tensors")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    dtypes = sorted(
        f"{k} {str(state[k].dtype).removeprefix('torch.')} vs {str(own[k].dtype).removeprefix('torch.')}"
        for k in set(own) & set(state)
        if state[k].is_floating_point() != own[k].is_floating_point()
    )
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes), ("dtype mismatch", dtypes)):
        if keys:
            more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
            problems.append(f"{label}: {', '.join(keys[:5])}{more}")
    if problems:
        raise BadInput(
            f"weights '{path}' do not match the model: {'; '.join(problems)}; "
            "check that they were saved from this model and config"
        )
    model.load_state_dict(state)


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: torch.nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass, from ``FlopCounterMode`` (which counts 2 per MAC)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(example)
    return counter.get_total_flops() // 2


def model_stats(entry: ModelEntry) -> dict[str, int]:
    """Parameters and MACs at the spec's input shape, computed on the meta device (no memory, no init cost)."""
    import torch

    with torch.device("meta"):
        model = entry.build()
        example = torch.zeros(entry.spec.input.shape)
        macs = count_macs(model, example)
    return {"params": count_params(model), "macs": int(macs)}


def is_model_file(ref: str) -> bool:
    """True for ``path/to/file.py:Name`` references to a user's own model."""
    return ".py:" in ref or ref.endswith(".py")


def load_user_model(ref: str) -> torch.nn.Module:
    """Import ``file.py:Name`` and return ``Name()`` (a class or a zero-argument function) in eval mode."""
    import importlib.util

    import torch

    path_text, _, attr = ref.rpartition(":") if not ref.endswith(".py") else (ref, "", "")
    path = Path(path_text)
    if not attr:
        raise BadInput(f"model file reference '{ref}' names no class; write {ref}:ClassName")
    if not path.is_file():
        raise BadInput(f"model file '{path}' does not exist; write --model path/to/file.py:ClassName")
    spec = importlib.util.spec_from_file_location(f"edgest_user_model_{abs(hash(str(path.resolve())))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file is broken: say so in one line
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BadInput(f"cannot import model file '{path}': {type(exc).__name__}: {text[:200]}; fix the file and retry") from None
    if not hasattr(module, attr):
        names = sorted(n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module.__name__)
        raise BadInput(f"model file '{path}' has no '{attr}'; nn.Module classes in it: {', '.join(names) or '(none)'}")
    torch.manual_seed(0)
    try:
        model = getattr(module, attr)()
    except Exception as exc:  # noqa: BLE001
        raise BadInput(f"cannot build '{attr}' from '{path}': {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(model, torch.nn.Module):
        raise BadInput(f"'{attr}' in '{path}' did not return an nn.Module (got {type(model).__name__})")
    return model.eval()
