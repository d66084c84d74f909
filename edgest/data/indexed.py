"""What the synthetic labelled sets share: sample ``i`` is a pure function of ``(seed, i)``, labels are balanced."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class IndexedSet:
    """Mixin for a frozen dataclass with ``size``, ``seed`` and ``num_classes`` that implements :meth:`sample`."""

    size: int
    seed: int
    num_classes: int
    #: what the set holds, for reports (e.g. "synthetic motion clips")
    kind: str = ""

    def sample(self, label: int, rng: np.random.Generator) -> np.ndarray:
        """One sample of class ``label`` drawn from ``rng``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.size

    def label(self, index: int) -> int:
        """Class of sample ``index`` (balanced: index modulo the class count)."""
        return index % self.num_classes

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if not 0 <= index < self.size:
            raise IndexError(index)
        label = self.label(index)
        return self.sample(label, np.random.default_rng([self.seed, index])), label

    def batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(samples stacked on a new batch axis, labels (B,)) over ``[start, stop)``."""
        stop = self.size if stop is None else stop
        for i in range(start, stop, batch_size):
            items = [self[j] for j in range(i, min(i + batch_size, stop))]
            yield np.stack([x for x, _ in items]), np.array([y for _, y in items], dtype=np.int64)
