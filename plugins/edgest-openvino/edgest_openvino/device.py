"""OpenVINO CPU-plugin runner, shared by the host checks and device bundles.

Needs only NumPy and openvino (no edgest, no torch): ``edgest bundle`` copies this file into
a bundle as the device runner, and :meth:`edgest_openvino.target.OpenVINOTarget.load` uses a
subclass that raises edgest's error instead of ``RuntimeError``.

The execution precision travels with the IR: ``lower`` writes it into the model's rt_info
(:data:`PRECISION_KEY`), and the runner compiles with that ``INFERENCE_PRECISION_HINT`` and
reads back what the CPU plugin actually uses. The plugin silently ignores a bf16 or f16 hint
the CPU cannot execute (and then keeps its own default, bf16 on AMX hosts), so a runner whose
read-back differs from the request refuses to run instead of reporting the wrong precision.
An int8 IR may instead record :data:`PLUGIN_DEFAULT`: no hint, so what stays float runs at the
plugin's own choice on each CPU (bf16 where the CPU has it), read back and reported as it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: the OpenVINO device the runner compiles for (edgest measures on the host CPU)
DEVICE = "CPU"
#: edgest's float precisions → the CPU plugin's INFERENCE_PRECISION_HINT values
HINTS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}
#: rt_info path in the IR holding the hint it was built for; an IR without it runs f32
PRECISION_KEY = ["edgest_openvino", "inference_precision"]
#: rt_info value meaning "give no hint": the CPU plugin's default precision for what stays float (int8 IRs)
PLUGIN_DEFAULT = "default"
#: CPU-plugin layer types that do the arithmetic; their runtime precisions are reported
COMPUTE_LAYERS = ("Convolution", "Deconvolution", "FullyConnected", "MatMul", "ScaledDotProductAttention")
#: what the CPU needs for each hint (Linux cpuinfo / macOS names), for the refusal message
NEEDS = {"bf16": "avx512_bf16 or amx_bf16 (x86), bf16 (Arm)", "f16": "avx512_fp16 or amx_fp16 (x86), asimdhp (Arm)"}


def requested_hint(model: Any) -> str:
    """The INFERENCE_PRECISION_HINT recorded in ``model``'s rt_info (``f32`` for an IR without one)."""
    if model.has_rt_info(PRECISION_KEY):
        return str(model.get_rt_info(PRECISION_KEY).astype(str))
    return "f32"


def compile_config(hint: str, threads: int) -> dict[str, Any]:
    """The CPU plugin's config for an IR recorded at ``hint``: latency mode, ``threads``, and the hint
    (none for :data:`PLUGIN_DEFAULT`)."""
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": int(threads),
                              "PERFORMANCE_HINT": "LATENCY"}  # one request at a time, as edgest measures it
    if hint != PLUGIN_DEFAULT:
        config["INFERENCE_PRECISION_HINT"] = hint
    return config


def execution_facts(compiled: Any) -> dict[str, Any]:
    """What the CPU plugin says it runs: its execution precision, devices, and compute layers by runtime precision."""
    layers: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) in COMPUTE_LAYERS:
            layers[info["runtimePrecision"].astype(str)] += 1
    return {
        "execution_precision": compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
        "execution_devices": list(compiled.get_property("EXECUTION_DEVICES")),
        "compute_layers_by_precision": dict(sorted(layers.items())),
    }


class OpenVINORunner:
    """One compiled model and one infer request on the OpenVINO CPU plugin, at the IR's recorded precision."""

    #: raised when the CPU device is missing or cannot execute the requested precision
    #: (the host runner raises edgest's TargetUnavailable)
    unavailable: type[Exception] = RuntimeError

    def __init__(self, path: str | Path, threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        if DEVICE not in core.available_devices:
            raise self.unavailable(
                f"target 'openvino' cannot run here: OpenVINO device '{DEVICE}' not available "
                f"(devices: {', '.join(core.available_devices) or 'none'})")
        model = core.read_model(str(path))
        self.requested = requested_hint(model)
        self.compiled = core.compile_model(model, DEVICE, compile_config(self.requested, threads))
        # report what the plugin actually uses, not what was asked for
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        if self.requested != PLUGIN_DEFAULT and self.precision != self.requested:
            raise self.unavailable(
                f"target 'openvino' cannot run this {self.requested} artifact here: the OpenVINO CPU plugin would "
                f"execute it in {self.precision} (this CPU lacks {NEEDS.get(self.requested, self.requested)}); "
                "check it on a CPU that has them (edgest bundle), or compile with --precision fp32 (an int8 artifact: "
                "without --target-option precision)")
        #: what ran, where the IR leaves the float precision to the plugin (a bundle's device report carries it)
        self.label = (f"OpenVINO CPU plugin; float parts at its default here, {self.precision}"
                      if self.requested == PLUGIN_DEFAULT else "")
        self._request = self.compiled.create_infer_request()
        self._outputs = list(self.compiled.outputs)

    def facts(self) -> dict[str, Any]:
        """:func:`execution_facts` of this runner's compiled model."""
        return execution_facts(self.compiled)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One inference; every output, in the model's output order."""
        # share_inputs: the request reads the caller's arrays in place (copied only where their layout or dtype
        # differs; the call is synchronous, so they outlive it), as OpenVINO's own CompiledModel.__call__ does,
        # instead of copying a clip (9.6 MB for squeezetime) into the request first. share_outputs=False: results
        # are copies, so they survive the next run of this request
        results = self._request.infer(list(inputs), share_inputs=True, share_outputs=False)
        return [results[o] for o in self._outputs]


def load(path: str, threads: int) -> OpenVINORunner:
    """The device-runner entry point: the IR at ``path`` (its ``.bin`` beside it) on the CPU plugin."""
    return OpenVINORunner(path, threads)
