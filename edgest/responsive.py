"""Does a model respond to its input? And stand-in weights for the zoo models that do not at their init.

Two zoo families ignore their input at their papers' initialisation, and the accuracy check
refuses to judge them (:func:`edgest.checks.accuracy.constant_reference`):

* EMOv2: layer scales start at 1e-6 and a stage's first block (no skip) outputs ``gamma * x``, so
  after four stages the logits are the same float32 numbers for every clip;
* spiking LMUFormer: the eval-mode BatchNorms are identities, no neuron reaches threshold, and
  the output is all zeros.

``edgest bench`` asks :func:`unresponsive_reason` once per model before compiling anything, and
``edgest compile`` warns after its build stage (:func:`warn_if_unresponsive`), so nobody waits
minutes for a cell that cannot be judged. Trained weights fix both (``edgest train`` trains either,
on clips or on keyword glides); :func:`write_responsive_weights` stands in for them where training
is too slow or beside the point (``edgest bench --stand-in-weights``, tests, benchmarks): layer
scales (parameters named ``gamma``) at 1, as in a trained model, and BatchNorm affines drawn at
random with statistics measured on standard-normal inputs, so spiking neurons fire at a healthy
rate. Stand-ins are not trained: accuracy against eager can be judged on them, task accuracy
cannot. Untrained, many spiking neurons sit near threshold, so a spiking model on stand-ins is far
more sensitive to rounding than trained (full ``lmuformer_spiking``, eager fp16 vs fp32: 10.4 dB on
stand-ins; trained, 20.1 dB on noise and 29.8 dB pooled with 256 keyword glides;
``bench/precision_floor.py``): judge its reduced-precision artifacts with trained weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgest import progress
from edgest.checks.accuracy import constant_reference, seeded_inputs

if TYPE_CHECKING:
    import torch

    from edgest.model import ModelEntry
    from edgest.records import ModelSpec


def fix_hint(model: str, command: str = "compile") -> str:
    """The fix for a model that ignores its input, naming ``command``'s CLI option and Python argument
    (``compile``, ``bench`` or ``optimize``)."""
    train = f"made e.g. by `edgest train --model {model} --out w.pt`"
    if command == "compile":
        return f"give trained weights with --weights w.pt (weights='w.pt'), {train}"
    if command == "optimize":
        given, stand_in = "Settings(weights='w.pt')", "Settings(stand_in_weights=True)"
        weights = "--weights w.pt"
    else:
        given, stand_in = f"weights={{'{model}': 'w.pt'}}", "stand_in_weights=True"
        weights = f"--weights {model}=w.pt"
    return (f"give trained weights with {weights} ({given}), {train}; "
            f"or judge accuracy only, on untrained stand-ins, with --stand-in-weights ({stand_in})")


def refusal(model: str, why: str, weights_given: bool, command: str) -> str:
    """Why no check could judge ``model`` (it ignores its input: ``why``), with ``command``'s fix (:func:`fix_hint`)."""
    at = "the weights given" if weights_given else "its initial weights"
    return f"model '{model}' ignores its input at {at} ({why}), so no check could judge its artifacts; {fix_hint(model, command)}"


def unresponsive_reason(entry: ModelEntry, weights: str | Path | None = None, seed: int = 0,
                        spec: ModelSpec | None = None) -> str | None:
    """Why ``entry`` (at ``weights``, else its init) ignores its input, from one eager run on two seeded inputs; else None.

    ``spec`` is the variant to build (default the registered one). A model that cannot be built or
    run here is not judged (None): its compile reports why.
    """
    from edgest.checks.eager import eager_outputs
    from edgest.model import load_weights

    spec = spec or entry.spec
    try:
        module = entry.build(spec.config)
        if weights is not None:
            load_weights(module, weights)
        outputs = eager_outputs(module, seeded_inputs([tuple(spec.input.shape)], 2, seed))
    except Exception:  # noqa: BLE001 - the compile of each cell says what is wrong, with its own error
        return None
    return constant_reference(outputs)


def warn_if_unresponsive(model: str, reference: Sequence[np.ndarray]) -> None:
    """Tell the active progress display at once when eager's ``reference`` outputs are constant (see the module docstring)."""
    why = constant_reference(reference)
    if why:
        progress.warn(f"model '{model}' ignores its input at these weights ({why}): the accuracy check cannot judge it "
                      f"and the report will be incomplete; {fix_hint(model)}")


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


def write_responsive_weights(entry: ModelEntry, path: str | Path, seed: int = 0, spec: ModelSpec | None = None) -> Path:
    """Build ``entry`` (seeded; the variant ``spec``, default the registered one), make it :func:`responsive`,
    save its state_dict to ``path`` (atomically) for ``--weights``."""
    import torch

    from edgest.fsio import atomic_save

    spec = spec or entry.spec
    torch.manual_seed(seed)
    model = responsive(entry.build(spec.config), tuple(spec.input.shape), seed)
    atomic_save(path, lambda fh: torch.save(model.state_dict(), fh))
    return Path(path)


def ignores_its_input(entry: ModelEntry, seed: int = 0) -> bool:
    """Whether ``entry`` built at its init (seeded) gives a constant output for two random inputs."""
    import torch

    torch.manual_seed(seed)
    model = entry.build().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        outs = [model(torch.randn(tuple(entry.spec.input.shape), generator=gen)) for _ in range(2)]
    return constant_reference([o.numpy() for o in outs]) is not None
