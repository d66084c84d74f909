"""CUDA target: AOTInductor. The captured program is compiled ahead of time by TorchInductor
into a ``.pt2`` package (``torch._inductor.aoti_compile_and_package``) and run with
``torch._inductor.aoti_load_package``; no Python model code is needed at run time.

Options (constructor keyword arguments, JSON-able):

- ``device``: ``"cuda"`` (default when ``torch.cuda.is_available()``) or ``"cpu"`` (the default
  otherwise: AOTInductor's C++/OpenMP backend). The resolved device is recorded.
- ``precision``: ``"fp32"``, ``"fp16"`` or ``"bf16"``: on cuda always; on the CPU only where the CPU
  has the precision natively (avx512_bf16/amx_bf16 for bf16, avx512_fp16/amx_fp16 for fp16, Arm's
  bf16/fp16 arithmetic) and torch's oneDNN says it runs it (:func:`cpu_precision_reason`): elsewhere
  oneDNN would emulate it, slower than fp32. The program edgest hands over was captured on the CPU
  in fp32: weights, constants and dtype arguments are cast and the program is exported again at that
  dtype. The runner casts numpy fp32 inputs to the model dtype and the outputs back to fp32.
- ``channels_last``: weights and inputs of rank 4/5 in channels-last(-3d) memory format.
- ``freezing`` (default on): ``torch._inductor.config.freezing``: weights become constants, so
  Inductor folds them (conv-BN, layout) at compile time.
- ``cudagraphs`` (default on for cuda): Inductor's ``triton.cudagraphs`` is ignored by AOT
  compilation (it is forced off there), so the runner captures the package's call in a
  ``torch.cuda.CUDAGraph`` and replays it (package loaded with ``run_single_threaded=True``,
  static input/output buffers); if capture fails it falls back to plain calls.

fp32 on a GPU is fp32: TF32 is turned off for cuBLAS and cuDNN (:func:`no_tf32`) while compiling
and in the runner, as torch would otherwise run convolutions in TF32.

On a GPU the runner synchronises before returning, so the shared latency protocol measures the
whole copy-in, run, copy-out round trip.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest.target import Lowered, Target
from edgest_cuda.device import META_PREFIX as _META_PREFIX
from edgest_cuda.device import AotiRunner, memory_format, no_tf32, read_package_metadata, to_channels_last, torch_dtype
from edgest_cuda.device import capture_cuda_graph  # noqa: F401 - re-exported: gpu_bench and bench scripts use it here

if TYPE_CHECKING:
    import torch

    from edgest.coverage import Coverage

PRECISIONS = ("fp32", "fp16", "bf16")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _no_cuda_reason() -> str:
    import torch

    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    return f"torch {torch.__version__} ({build}) sees no CUDA device"


#: CPU precision → (the capability of :func:`edgest.host.capabilities` it needs, oneDNN's own test)
_CPU_HALF = {"bf16": ("bf16", "_is_mkldnn_bf16_supported"), "fp16": ("fp16", "_is_mkldnn_fp16_supported")}


def cpu_precision_reason(precision: str, features: tuple[str, ...] | None = None) -> str | None:
    """Why AOTInductor cannot run ``precision`` natively on this CPU (``features``: its ISA, default this host's),
    or None when it can: fp32 always; bf16/fp16 need the CPU's native instructions and torch's oneDNN to use them."""
    import torch

    from edgest.host import GROUPS, capabilities, isa_summary

    if precision not in _CPU_HALF:
        return None
    capability, onednn_test = _CPU_HALF[precision]
    if not capabilities(features)[capability]:
        return (f"this CPU has no native {precision} ({' or '.join(GROUPS[capability])}; it has: "
                f"{isa_summary(features)}), so oneDNN would emulate it, slower than fp32")
    if not getattr(torch.ops.mkldnn, onednn_test)():
        return f"torch {torch.__version__}'s oneDNN does not run {precision} on this CPU"
    return None


def _cast_graph_dtypes(module: torch.fx.GraphModule, dtype: torch.dtype) -> int:
    """Replace float32 dtype literals in the graph's args (``aten.full(dtype=…)``, ``.to(float32)``)
    and float32 tensor attributes that are not parameters/buffers; returns how many changed."""
    import torch

    changed = 0

    def swap(value: Any) -> Any:
        nonlocal changed
        if value is torch.float32:
            changed += 1
            return dtype
        if isinstance(value, (list, tuple)):
            return type(value)(swap(v) for v in value)
        return value

    for node in module.graph.nodes:
        if node.op == "call_function":
            node.args = swap(node.args)
            node.kwargs = {k: swap(v) for k, v in node.kwargs.items()}
        elif node.op == "get_attr":
            owner, _, attr = node.target.rpartition(".")
            holder = module.get_submodule(owner) if owner else module
            value = getattr(holder, attr, None)
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter) and value.dtype == torch.float32:
                if attr not in dict(holder.named_buffers(recurse=False)):
                    setattr(holder, attr, value.to(dtype))
                    changed += 1
    module.recompile()
    return changed


def prepare_program(
    program: torch.export.ExportedProgram, example_inputs: Sequence[torch.Tensor], device: str = "cpu",
    precision: str = "fp32", channels_last: bool = False,
) -> tuple[torch.export.ExportedProgram, tuple[torch.Tensor, ...], dict[str, Any]]:
    """The program and example inputs as the package will see them: on ``device``, at ``precision``,
    optionally channels-last. Returns them with facts for the artifact's details.

    A CPU/fp32/contiguous request returns the program untouched. Otherwise a copy is moved
    with ``torch.export.passes.move_to_device_pass`` (which also rewrites ``device=`` arguments
    in the graph), cast, and exported again (non-strict) with the converted example inputs.
    """
    import torch

    dtype = torch_dtype(precision)
    facts: dict[str, Any] = {"reexported": False}
    if device == "cpu" and precision == "fp32" and not channels_last:
        return program, tuple(example_inputs), facts
    with warnings.catch_warnings():  # torch 2.13 warns about its own LeafSpec when copying a program
        warnings.simplefilter("ignore", FutureWarning)
        ep = copy.deepcopy(program)  # move_to_device_pass and Module.to mutate tensors the caller still holds
    if device != "cpu":
        from torch.export.passes import move_to_device_pass

        ep = move_to_device_pass(ep, device)
    module = ep.module()
    if dtype != torch.float32:
        module = module.to(dtype)
        facts["dtype_literals_cast"] = _cast_graph_dtypes(module, dtype)
    if channels_last:
        with torch.no_grad():
            for p in (*module.parameters(), *module.buffers()):
                if memory_format(p) is not None:
                    p.data = to_channels_last(p.data)
    example = []
    for x in example_inputs:
        x = x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)
        example.append(to_channels_last(x) if channels_last else x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        new = torch.export.export(module, tuple(example), strict=False)
    facts["reexported"] = True
    return new, tuple(example), facts


class CudaTarget(Target):
    """AOTInductor package for an NVIDIA GPU (or the CPU where torch has no CUDA)."""

    name = "cuda"
    artifact_format = "pt2"
    description = "AOTInductor .pt2 package (torch._inductor), CUDA GPU; CPU when torch sees no GPU"
    requires = ("torch",)
    toolchain = ()
    device_runner = "edgest_cuda.device"
    runtime_requirements = (("numpy", "torch=={torch}"),)
    install_hint = "pip install torch (a CUDA build, from https://pytorch.org/get-started/locally/, for the GPU)"
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS

    #: None defaults are worked out per machine: device "cuda" where torch sees a GPU, else "cpu";
    #: CUDA graphs on for a GPU
    option_table: ClassVar[dict[str, tuple[Any, Any]]] = {
        "device": (str, None), "precision": (PRECISIONS, "fp32"), "channels_last": (bool, False),
        "freezing": (bool, True), "cudagraphs": (bool, None),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # checks keys and types against option_table
        device = options.get("device") or ("cuda" if cuda_available() else "cpu")
        if device not in ("cuda", "cpu") and not str(device).startswith("cuda:"):
            raise BadInput(f"target 'cuda' device must be 'cuda', 'cuda:N' or 'cpu', not '{device}'")
        # the check worker builds the target before it starts the cold-load clock: importing Inductor
        # here (seconds) keeps it out of cold_load_ms, as other targets import their runtime first
        import torch._inductor  # noqa: F401

        cudagraphs = self.option("cudagraphs")
        self.options = {key: self.option(key) for key in self.option_table} | {
            "device": device, "cudagraphs": device != "cpu" if cudagraphs is None else cudagraphs}

    def ensure_available(self) -> None:
        super().ensure_available()
        if self.options["device"] != "cpu" and not cuda_available():
            raise TargetUnavailable(
                f"target 'cuda' unavailable: device '{self.options['device']}' requested but {_no_cuda_reason()}; "
                "install a CUDA build of torch on a machine with an NVIDIA GPU, or pass device='cpu'"
            )

    def _check_precision(self) -> None:
        precision = self.options["precision"]
        reason = cpu_precision_reason(precision) if self.options["device"] == "cpu" else None
        if reason:
            raise Unsupported(
                f"target 'cuda' precision '{precision}' on the CPU: {reason}; run on a CPU with native {precision} "
                f"or a machine with an NVIDIA GPU and a CUDA build of torch (device='cuda'; "
                f"{_no_cuda_reason() if not cuda_available() else 'device=cpu was requested'}), or use precision 'fp32'"
            )

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        import torch

        self._check_precision()
        self.ensure_available()
        opts = self.options
        if opts["device"] != "cpu" and opts["precision"] == "fp32":
            no_tf32()
        t0 = time.perf_counter()
        prepared, example, facts = prepare_program(program, example_inputs, opts["device"], opts["precision"],
                                                   opts["channels_last"])
        t1 = time.perf_counter()
        configs: dict[str, Any] = {
            "freezing": opts["freezing"],
            "aot_inductor.metadata": {
                f"{_META_PREFIX}{k}": str(opts[k]) for k in ("device", "precision", "channels_last", "cudagraphs")
            },
        }
        path = out_dir / "model.pt2"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch._inductor.aoti_compile_and_package(prepared, package_path=str(path), inductor_configs=configs)
        t2 = time.perf_counter()
        details: dict[str, Any] = {
            "device": opts["device"], "precision": opts["precision"], "channels_last": opts["channels_last"],
            "freezing": opts["freezing"], "cudagraphs": "runner-side CUDA graph replay" if opts["cudagraphs"] else "off",
            "torch_cuda": torch.version.cuda, "prepare_seconds": round(t1 - t0, 3), "inductor_seconds": round(t2 - t1, 3),
            "nodes": len(prepared.graph.nodes), **facts,
        }
        meta = read_package_metadata(path)
        details["package_device"] = meta.get("AOTI_DEVICE_KEY", "")
        if opts["device"] != "cpu":
            index = torch.device(opts["device"]).index or 0
            details["gpu"] = torch.cuda.get_device_name(index)
            details["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(index)))
        else:
            from edgest.host import isa_summary

            details["cpu_isa"] = meta.get("AOTI_CPU_ISA", "")
            details["host_isa"] = isa_summary()
        return Lowered(path, details)

    def load(self, path: Path, threads: int) -> AotiRunner:
        meta = read_package_metadata(path)
        device = meta.get(f"{_META_PREFIX}device", self.options["device"])
        if device != "cpu" and not cuda_available():
            raise TargetUnavailable(f"target 'cuda' cannot run {path.name} here: it was compiled for {device} but "
                                    f"{_no_cuda_reason()}")
        return AotiRunner(
            path, threads, device=device,
            precision=meta.get(f"{_META_PREFIX}precision", self.options["precision"]),
            channels_last=meta.get(f"{_META_PREFIX}channels_last", str(self.options["channels_last"])) == "True",
            cudagraphs=meta.get(f"{_META_PREFIX}cudagraphs", str(self.options["cudagraphs"])) == "True",
        )

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        """Ops Inductor generates kernels for and those it runs as ATen fallbacks (:mod:`edgest_cuda.coverage`)."""
        from edgest_cuda.coverage import coverage

        return coverage(program)
