"""Weights for tests and benchmarks of random-init models: which file each benchmarked model compiles with.

The stand-in weights themselves (layer scales at 1, calibrated BatchNorms) live in
:mod:`edgest.responsive`, which ``edgest bench --stand-in-weights`` uses too; they are re-exported
here for the tests and ``bench/`` scripts that import them from this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from edgest.responsive import calibrate_bns, ignores_its_input, responsive, write_responsive_weights

__all__ = ["BenchWeights", "bench_weights", "calibrate_bns", "ignores_its_input", "responsive", "write_responsive_weights"]


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
