"""OpenVINO CPU-plugin runner, shared by the host checks and device bundles.

Needs only NumPy and openvino (no edgest, no torch): ``edgest bundle`` copies this file into
a bundle as the device runner, and :meth:`edgest_openvino.target.OpenVINOTarget.load` uses a
subclass that raises edgest's error instead of ``RuntimeError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: the OpenVINO device the runner compiles for (edgest measures on the host CPU)
DEVICE = "CPU"
#: execution precision asked of the CPU plugin; the only precision this target declares is fp32
INFERENCE_PRECISION = "f32"


class OpenVINORunner:
    """One compiled model and one infer request on the OpenVINO CPU plugin."""

    #: raised when the CPU device is missing (the host runner raises edgest's TargetUnavailable)
    unavailable: type[Exception] = RuntimeError

    def __init__(self, path: str | Path, threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        if DEVICE not in core.available_devices:
            raise self.unavailable(
                f"target 'openvino' cannot run here: OpenVINO device '{DEVICE}' not available "
                f"(devices: {', '.join(core.available_devices) or 'none'})")
        config = {
            "INFERENCE_NUM_THREADS": int(threads),
            "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION,
            "PERFORMANCE_HINT": "LATENCY",  # one request at a time, as edgest measures it
        }
        self.compiled = core.compile_model(str(path), DEVICE, config)
        # report what the plugin actually uses, not what was asked for
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._request = self.compiled.create_infer_request()
        self._outputs = list(self.compiled.outputs)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One inference; every output, in the model's output order."""
        # share_outputs=False: results are copies, so they survive the next run of this request
        results = self._request.infer(list(inputs), share_inputs=False, share_outputs=False)
        return [results[o] for o in self._outputs]


def load(path: str, threads: int) -> OpenVINORunner:
    """The device-runner entry point: the IR at ``path`` (its ``.bin`` beside it) on the CPU plugin."""
    return OpenVINORunner(path, threads)
