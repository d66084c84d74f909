"""ONNX Runtime (CPU execution provider) runner, shared by the host checks and device bundles.

Needs only NumPy and onnxruntime (no edgest, no torch): ``edgest bundle`` copies this file
into a bundle as the device runner, and :meth:`edgest_onnx.target.OnnxTarget.load` uses the
same class on the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class OrtRunner:
    """An ONNX Runtime session on the CPU execution provider."""

    def __init__(self, path: str | Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.threads = threads
        self._names = [i.name for i in self.session.get_inputs()]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One inference: inputs in the model's input order, all outputs in its output order."""
        return self.session.run(None, dict(zip(self._names, inputs)))


def load(path: str, threads: int) -> OrtRunner:
    """The device-runner entry point: ``path`` loaded by ONNX Runtime with ``threads`` intra-op threads."""
    return OrtRunner(path, threads)
