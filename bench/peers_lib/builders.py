"""The peers: what a user would pick instead of edgest, each built the way its own documentation shows.

A :class:`Peer` either writes an artifact in the build phase (its ``build`` function, run once per model
and cached by :func:`build_all`) or is made inside the timing process (eager PyTorch and
``torch.compile``, whose compiled code lives in that process). A builder that raises is recorded
with its one-line error; nothing a peer does stops the bench.

Shared steps (the plain ONNX export, the OpenVINO IR) are made once per model and reused by the
peers that start from them (``quantize_static`` starts from the plain export, NNCF from the IR).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: the toolchains whose versions key the build cache
VERSIONED = ("torch", "onnx", "onnxscript", "onnxruntime", "executorch", "torchao", "openvino", "nncf", "olive-ai")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, prefixed by its type; at most 300 characters."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # OpenVINO's first line only says where in its sources it threw: the message follows
    text = next((ln for ln in lines if not (ln.startswith("Exception from src/") and ln.endswith(":"))), "")
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


class BuildContext:
    """What every builder gets: the model (weights loaded, eval), one seeded example input, the calibration
    inputs edgest uses, and the model's cache folder (shared steps are memoised there)."""

    def __init__(self, module: Any, example: np.ndarray, calibration: Sequence[tuple[np.ndarray, ...]], root: Path) -> None:
        self.module, self.example, self.calibration, self.root = module, example, calibration, root
        self._program: Any = None

    def program(self) -> Any:
        """``torch.export.export(module, (example,))``, once."""
        import torch

        if self._program is None:
            self._program = torch.export.export(self.module, (torch.from_numpy(self.example),))
        return self._program

    def shared(self, name: str, make: Callable[[Path], None], filename: str) -> Path:
        """``root/shared/name/filename``, made by ``make(path)`` unless a previous peer of this run made it."""
        path = self.root / "shared" / name / filename
        if not (path.parent / "done").exists():
            shutil.rmtree(path.parent, ignore_errors=True)
            path.parent.mkdir(parents=True)
            make(path)
            (path.parent / "done").write_text("")
        return path


@dataclass(frozen=True)
class Peer:
    """One peer: its table label, nominal precision, how the timing process runs it, and how it is built."""

    name: str
    label: str
    precision: str  # fp32 | int8 | default (what the runtime picks; judged at the precision it reports)
    runner: str  # eager | torch_compile | ort | executorch | openvino
    build: Callable[[BuildContext, Path], dict[str, Any]] | None = None  # writes into the folder; returns details
    options: dict[str, Any] = field(default_factory=dict)
    needs: str = ""  # a module that must be importable; else the row says "not installed"


def _onnx_export(ctx: BuildContext) -> Path:
    import torch

    def make(path: Path) -> None:
        torch.onnx.export(ctx.module, (torch.from_numpy(ctx.example),), str(path), dynamo=True)

    return ctx.shared("onnx-export", make, "model.onnx")


def build_ort_fp32(ctx: BuildContext, folder: Path) -> dict[str, Any]:
    """``torch.onnx.export(dynamo=True)``, nothing else."""
    src = _onnx_export(ctx)
    shutil.copytree(src.parent, folder, dirs_exist_ok=True)
    return {"artifact": "model.onnx", "how": "torch.onnx.export(dynamo=True), ONNX Runtime CPU EP (ORT_ENABLE_ALL)"}


class _Reader:
    """ONNX Runtime's CalibrationDataReader over edgest's calibration inputs."""

    def __init__(self, name: str, inputs: Sequence[tuple[np.ndarray, ...]]) -> None:
        self._it = iter([{name: xs[0]} for xs in inputs])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        pass


def build_ort_int8(ctx: BuildContext, folder: Path) -> dict[str, Any]:
    """ORT's documented flow: ``quant_pre_process``, then ``quantize_static`` QDQ per-channel, defaults otherwise
    (MinMax calibration, int8 activations and weights)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = _onnx_export(ctx)
    pre, how = folder / "pre.onnx", "quant_pre_process + "
    try:
        quant_pre_process(str(src), str(pre))
    except Exception as exc:  # noqa: BLE001 - ORT says to quantise the original graph then
        pre, how = src, f"(quant_pre_process failed: {first_line(exc)[:80]}) "
    name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(name, ctx.calibration)
    quantize_static(str(pre), str(folder / "model.onnx"), reader, quant_format=QuantFormat.QDQ, per_channel=True)
    return {"artifact": "model.onnx", "how": how + f"quantize_static(QDQ, per_channel=True; S8S8, MinMax) on {len(ctx.calibration)} "
            "calibration inputs"}


def _lower_xnnpack(program: Any, path: Path) -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackPartitioner,
    )
    from executorch.exir import to_edge_transform_and_lower

    path.write_bytes(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)


def build_et_fp32(ctx: BuildContext, folder: Path) -> dict[str, Any]:
    """ExecuTorch's default XNNPACK lowering of ``torch.export.export``."""
    _lower_xnnpack(ctx.program(), folder / "model.pte")
    return {"artifact": "model.pte", "how": "to_edge_transform_and_lower(XnnpackPartitioner()).to_executorch()"}


def build_et_int8(ctx: BuildContext, folder: Path) -> dict[str, Any]:
    """ExecuTorch's documented PT2E flow: XNNPACKQuantizer with the symmetric per-channel config, then the XNNPACK lowering."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(ctx.program().module(), quantizer)
    with torch.no_grad():
        for xs in ctx.calibration:
            prepared(*(torch.from_numpy(x) for x in xs))
    converted = convert_pt2e(prepared)
    _lower_xnnpack(torch.export.export(converted, (torch.from_numpy(ctx.example),)), folder / "model.pte")
    return {"artifact": "model.pte", "how": "prepare_pt2e(XNNPACKQuantizer, get_symmetric_quantization_config(is_per_channel=True)) "
            f"on {len(ctx.calibration)} calibration inputs, convert_pt2e, XNNPACK lowering"}


def _ov_ir(ctx: BuildContext) -> Path:
    """``ov.convert_model`` of the nn.Module (its documented entry; torch.export's program if tracing fails)."""
    import openvino as ov
    import torch

    def make(path: Path) -> None:
        try:
            model = ov.convert_model(ctx.module, example_input=torch.from_numpy(ctx.example))
            how = "ov.convert_model(nn.Module)"
        except Exception as exc:  # noqa: BLE001 - the ExportedProgram frontend may still take it
            model = ov.convert_model(ctx.program(), example_input=(torch.from_numpy(ctx.example),))
            how = f"ov.convert_model(ExportedProgram) (nn.Module failed: {first_line(exc)[:80]})"
        ov.save_model(model, str(path), compress_to_fp16=False)  # as held in memory: f32 weights
        (path.parent / "how.txt").write_text(how)

    return ctx.shared("openvino-ir", make, "model.xml")


def build_ov(ctx: BuildContext, folder: Path) -> dict[str, Any]:
    """The IR as converted (both OpenVINO float peers run it; they differ in the runner's precision hint)."""
    src = _ov_ir(ctx)
    shutil.copytree(src.parent, folder, dirs_exist_ok=True)
    return {"artifact": "model.xml", "how": (src.parent / "how.txt").read_text()}


def build_ov_nncf(ctx: BuildContext, folder: Path) -> dict[str, Any]:
    """``nncf.quantize(ov_model, nncf.Dataset(calibration))`` with NNCF's defaults."""
    from unittest import mock

    import nncf
    import nncf.telemetry.decorator as telemetry
    import openvino as ov
    from nncf.telemetry.wrapper import NNCFTelemetryStub

    src = _ov_ir(ctx)
    with mock.patch.object(telemetry, "telemetry", NNCFTelemetryStub()):  # no telemetry (nothing to send it to here)
        quantized = nncf.quantize(ov.Core().read_model(str(src)), nncf.Dataset([xs[0] for xs in ctx.calibration]))
    ov.save_model(quantized, str(folder / "model.xml"), compress_to_fp16=False)
    return {"artifact": "model.xml", "how": f"{(src.parent / 'how.txt').read_text()}, nncf.quantize defaults on "
            f"{len(ctx.calibration)} calibration inputs"}


@contextlib.contextmanager
def _loggers_at(level: str, *names: str) -> Iterator[None]:
    """Raise the named loggers ("" is the root) to ``level`` for the duration."""
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, before, strict=True):
            lg.setLevel(lv)


def _olive_dataset(ctx: BuildContext, name: str) -> str:
    """Register (once per process) an Olive dataset of edgest's calibration inputs under ``name``; returns ``name``."""
    import torch
    from olive.data.registry import Registry

    def dataset(**_: Any) -> list[tuple[dict[str, Any], int]]:
        return [({"x": torch.from_numpy(xs[0][0])}, 0) for xs in ctx.calibration]  # batch 1: the loader adds it

    Registry.register_dataset(name)(dataset)
    return name


def build_olive(ctx: BuildContext, folder: Path) -> dict[str, Any]:
    """Olive's documented workflow, run from Python (``olive.workflows.run``): the PyTorch model →
    OnnxConversion → OnnxPeepholeOptimizer → OnnxStaticQuantization (QDQ, per-channel; Olive's defaults
    otherwise) calibrated on edgest's calibration inputs; no search, no evaluation."""
    from unittest import mock

    from olive.telemetry.telemetry import Telemetry

    # no telemetry, not even the heartbeat it sends before reading OLIVE_DISABLE_TELEMETRY: its CI path sends nothing
    with mock.patch.object(Telemetry, "_is_ci_environment", staticmethod(lambda: True)):
        Telemetry()
        from olive.workflows import run as olive_run

    shape = list(ctx.example.shape)
    data = _olive_dataset(ctx, f"edgest_calibration_{id(ctx)}")
    config = {
        "input_model": {"type": "PyTorchModel", "model_loader": lambda _path: ctx.module,
                        "io_config": {"input_names": ["x"], "input_shapes": [shape], "output_names": ["out"]}},
        "data_configs": [{"name": "calibration", "load_dataset_config": {"type": data},
                          "dataloader_config": {"batch_size": 1}}],
        "passes": {"conversion": {"type": "OnnxConversion"},
                   "peephole": {"type": "OnnxPeepholeOptimizer"},
                   "quantization": {"type": "OnnxStaticQuantization", "quant_format": "QDQ", "per_channel": True,
                                    "data_config": "calibration"}},
        "engine": {"output_dir": str(folder / "olive"), "cache_dir": str(folder / "olive-cache"),
                   "evaluate_input_model": False, "log_severity_level": 3},
    }
    olive_log = logging.getLogger("olive")
    kept = olive_log.handlers[:], olive_log.propagate
    olive_log.handlers, olive_log.propagate = [], False  # it prints its run history at any level; failures raise
    try:
        with _loggers_at("ERROR", ""):  # ORT's quantizer warns per weight on the root logger
            best = olive_run(config).get_best_candidate()
    finally:
        olive_log.handlers, olive_log.propagate = kept
    shutil.rmtree(folder / "olive-cache", ignore_errors=True)
    if best is None or not best.model_path or not Path(best.model_path).is_file():
        raise RuntimeError(f"Olive's workflow gave no ONNX model (output folder {folder / 'olive'})")
    # the model where Olive wrote it, beside any external-data file it names
    artifact = Path(best.model_path).resolve().relative_to(folder.resolve())
    return {"artifact": str(artifact), "how": "olive.workflows.run: OnnxConversion → OnnxPeepholeOptimizer → "
            f"OnnxStaticQuantization(QDQ, per_channel=True) on {len(ctx.calibration)} calibration inputs"}


#: every peer, in table order
PEERS: dict[str, Peer] = {p.name: p for p in (
    Peer("eager", "torch eager", "fp32", "eager"),
    Peer("torch-compile", "torch.compile (inductor, freezing)", "fp32", "torch_compile"),
    Peer("ort-fp32", "torch.onnx.export(dynamo) + ONNX Runtime fp32", "fp32", "ort", build_ort_fp32),
    Peer("ort-int8", "ONNX Runtime quantize_static int8 (QDQ, per-channel)", "int8", "ort", build_ort_int8),
    Peer("et-fp32", "ExecuTorch XNNPACK fp32 (default lowering)", "fp32", "executorch", build_et_fp32),
    Peer("et-int8", "ExecuTorch PT2E int8 (stock XNNPACKQuantizer)", "int8", "executorch", build_et_int8),
    Peer("ov-f32", "OpenVINO f32 (INFERENCE_PRECISION_HINT f32)", "fp32", "openvino", build_ov, {"hint": "f32"}),
    Peer("ov-default", "OpenVINO default (no precision hint)", "default", "openvino", build_ov),
    Peer("ov-nncf-int8", "OpenVINO + NNCF int8 (nncf.quantize defaults)", "int8", "openvino", build_ov_nncf),
    Peer("ov-nncf-int8-f32", "OpenVINO + NNCF int8, float parts pinned to f32", "int8", "openvino", build_ov_nncf, {"hint": "f32"}),
    Peer("olive-int8", "Olive int8 (QDQ per-channel)", "int8", "ort", build_olive, needs="olive"),
)}


def versions() -> dict[str, str]:
    """Installed versions of :data:`VERSIONED` (absent ones left out)."""
    out = {}
    for dist in VERSIONED:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def cache_key(model: str, weights: Path | None, seed: int, calibration: int) -> str:
    """What decides every peer artifact of a model: its name, weights, seed, calibration size and toolchain versions."""
    sha = hashlib.sha256(weights.read_bytes()).hexdigest() if weights else None
    payload = {"model": model, "weights": sha, "seed": seed, "calibration": calibration, "versions": versions(), "layout": 1}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
