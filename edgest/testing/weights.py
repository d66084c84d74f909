"""Weights that make zoo models respond to their input, for tests and benchmarks of random-init models.

Two zoo families ignore their input at their papers' initialisation, and the accuracy check
refuses to judge them (:func:`edgest.checks.accuracy.constant_reference`):

* EMOv2: layer scales start at 1e-6 and a stage's first block (no skip) outputs ``gamma * x``, so
  after four stages the logits are the same float32 numbers for every clip;
* spiking LMUFormer: the eval-mode BatchNorms are identities, no neuron reaches threshold, and
  the output is all zeros.

Trained weights fix both (``edgest train`` trains either, on clips or on keyword glides); these stand
in for them where training is too slow or beside the point: layer scales (parameters named ``gamma``) at 1,
as in a trained model, and BatchNorm affines drawn at random with statistics measured on
standard-normal inputs, so spiking neurons fire at a healthy rate. Untrained, many of those neurons
sit near threshold, so a spiking model on stand-ins is far more sensitive to rounding than trained
(full ``lmuformer_spiking``, eager fp16 vs fp32: 10.4 dB on stand-ins; trained, 20.1 dB on noise
and 29.8 dB pooled with 256 keyword glides; ``bench/precision_floor.py``): judge its reduced-precision
artifacts with trained weights.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import torch

    from edgest.model import ModelEntry


def calibrate_bns(model: torch.nn.Module, make_input: Callable[[], torch.Tensor], seed: int = 1) -> torch.nn.Module:
    """Random BN affines, BN statistics from two batches of ``make_input()``; returns ``model`` in eval mode."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for bn in model.modules():
        if isinstance(bn, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            bn.momentum = None  # cumulative average over the calibration batches
            bn.weight.data.copy_(torch.rand(bn.num_features, generator=g) * 0.7 + 0.8)
            bn.bias.data.copy_(torch.rand(bn.num_features, generator=g) * 0.8 - 0.2)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(make_input())
    return model.eval()


def responsive(model: torch.nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> torch.nn.Module:
    """``model`` with layer scales at 1 and calibrated BNs (see the module docstring), in eval mode."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(1.0)
    rng = torch.Generator().manual_seed(seed)
    batch = (4, *input_shape[1:])
    return calibrate_bns(model, lambda: torch.randn(batch, generator=rng), seed + 1)


def write_responsive_weights(entry: ModelEntry, path: str | Path, seed: int = 0) -> Path:
    """Build ``entry`` (seeded), make it :func:`responsive`, save its state_dict to ``path`` for ``--weights``."""
    import torch

    torch.manual_seed(seed)
    model = responsive(entry.build(), tuple(entry.spec.input.shape), seed)
    torch.save(model.state_dict(), path)
    return Path(path)


def ignores_its_input(entry: ModelEntry, seed: int = 0) -> bool:
    """Whether ``entry`` built at its init (seeded) gives a constant output for two random inputs."""
    import torch

    from edgest.checks.accuracy import constant_reference

    torch.manual_seed(seed)
    model = entry.build().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        outs = [model(torch.randn(tuple(entry.spec.input.shape), generator=gen)) for _ in range(2)]
    return constant_reference([o.numpy() for o in outs]) is not None


class BenchWeights(NamedTuple):
    """The weights a benchmark compiles a model with: a file (None: the model's init) and whether it is trained."""

    path: Path | None
    trained: bool

    @property
    def label(self) -> str:
        """``trained``, ``init`` or ``stand-in``, for tables."""
        return "trained" if self.trained else ("init" if self.path is None else "stand-in")


def bench_weights(models: list[str], trained: dict[str, str], folder: str | Path) -> dict[str, BenchWeights]:
    """Weights for each benchmarked model (:class:`BenchWeights`). A model named in ``trained`` (e.g. from
    ``edgest train``) keeps its file; a zoo model that ignores its input at its paper's init (EMOv2,
    spiking LMUFormer) gets :func:`write_responsive_weights` in ``folder``, so its accuracy can be judged;
    any other keeps its init (path None). Stand-ins are not trained: judge no task accuracy on them."""
    from edgest.plugins import get_registry

    registry = get_registry()
    out: dict[str, BenchWeights] = {}
    Path(folder).mkdir(parents=True, exist_ok=True)
    for name in models:
        entry = registry.model(name)
        if name in trained:
            out[name] = BenchWeights(Path(trained[name]), True)
        elif ignores_its_input(entry):
            out[name] = BenchWeights(write_responsive_weights(entry, Path(folder) / f"{name}.pt"), False)
        else:
            out[name] = BenchWeights(None, False)
    return out
