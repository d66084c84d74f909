#!/usr/bin/env python3
"""Run an edgest bundle on a device with only the target's runtime and NumPy installed.

Checks accuracy against the bundled expected outputs and measures latency with edgest's own
protocol (the NumPy-only modules in ./edgest_check), then writes device-report.json for
``edgest report merge``. No torch and no edgest needed (except where a runtime itself needs
torch, e.g. ExecuTorch's Python bindings take torch tensors).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from edgest_check.accuracy import compare, within  # noqa: E402
from edgest_check.latency import LatencyConfig, measure  # noqa: E402


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cpu() -> str:
    try:
        if sys.platform == "darwin":
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True).stdout.strip()
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class OnnxRunner:
    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.session.get_inputs()]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.names[0]: x})[0]


class ExecuTorchRunner:
    runtime = "executorch"

    def __init__(self, path: Path, threads: int) -> None:
        from executorch.runtime import Runtime

        try:  # set once, before any method is loaded (a reset after loading crashes XNNPACK)
            from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

            _unsafe_reset_threadpool(threads)
        except ImportError:
            pass
        self.method = Runtime.get().load_program(str(path)).load_method("forward")

    def run(self, x: np.ndarray) -> np.ndarray:
        import torch  # ExecuTorch's Python bindings exchange torch tensors

        out = self.method.execute([torch.from_numpy(x)])
        return out[0].numpy()


class CoreMLRunner:
    runtime = "coremltools"

    def __init__(self, path: Path, threads: int) -> None:
        if sys.platform != "darwin":
            raise SystemExit("Core ML prediction needs macOS; run this bundle on a Mac")
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit[os.environ.get("EDGEST_COMPUTE_UNITS", "ALL")])
        spec = self.model.get_spec()
        self.name, self.out = spec.description.input[0].name, spec.description.output[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict({self.name: x})[self.out])


class TVMRunner:
    runtime = "apache-tvm"

    def __init__(self, path: Path, threads: int) -> None:
        os.environ.setdefault("TVM_NUM_THREADS", str(threads))
        os.environ.setdefault("TVM_USE_RUNTIME_LIB", "1")  # load libtvm_runtime only, as a device would
        import tvm
        from tvm.runtime import vm

        self.vm = vm.VirtualMachine(tvm.runtime.load_module(str(path)), tvm.cpu())
        self.tensor = tvm.runtime.tensor

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self.vm["main"](self.tensor(x))
        return (out[0] if not hasattr(out, "numpy") else out).numpy()


class OpenVINORunner:
    runtime = "openvino"

    def __init__(self, path: Path, threads: int) -> None:
        import openvino as ov

        self.model = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(x)[0])


class TensorRTRunner:
    runtime = "tensorrt"

    def __init__(self, path: Path, threads: int) -> None:
        import tensorrt as trt
        import torch  # CUDA buffers; Jetson images ship torch

        self.torch = torch
        engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(path.read_bytes())
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inp = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.outp = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.out = torch.empty(tuple(engine.get_tensor_shape(self.outp)), device="cuda")
        self.stream = torch.cuda.Stream()

    def run(self, x: np.ndarray) -> np.ndarray:
        xin = self.torch.from_numpy(x).cuda()
        self.context.set_tensor_address(self.inp, xin.data_ptr())
        self.context.set_tensor_address(self.outp, self.out.data_ptr())
        self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()
        return self.out.cpu().numpy()


RUNNERS = {"onnx": OnnxRunner, "pte": ExecuTorchRunner, "mlpackage": CoreMLRunner, "so": TVMRunner,
           "xml": OpenVINORunner, "plan": TensorRTRunner}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--sustained", type=int, default=0, help="extra measurement rounds (phones throttle)")
    ap.add_argument("--cooldown", type=float, default=10.0, help="seconds between sustained rounds")
    ap.add_argument("--device-name", default=platform.node() or "device")
    ap.add_argument("--out", type=Path, default=HERE / "device-report.json")
    args = ap.parse_args()

    manifest = json.loads((HERE / "manifest.json").read_text())
    runner_cls = RUNNERS.get(manifest["format"])
    if runner_cls is None:
        raise SystemExit(f"no device runner for format '{manifest['format']}'")
    inputs = [np.load(HERE / "data" / f"input_{i:02d}.npy") for i in range(manifest["samples"])]
    expected = [np.load(HERE / "data" / f"expected_{i:02d}.npy") for i in range(manifest["samples"])]
    artifact = HERE / manifest["artifact"]
    if artifact.is_file() and _sha256(artifact) != manifest["artifact_sha256"]:
        raise SystemExit(f"error: {artifact.name} does not match the bundle's sha256 (a corrupted copy?); copy the bundle again")
    t0 = time.perf_counter()
    try:
        runner = runner_cls(artifact, args.threads)
    except ImportError as exc:
        install = "; ".join("python -m pip install " + " ".join(a) for a in manifest.get("runtime_install", []))
        raise SystemExit(f"error: the {runner_cls.runtime} runtime is not installed here ({exc}); install it with: {install}") from None
    t1 = time.perf_counter()
    outputs = [runner.run(x) for x in inputs]
    cold_ms = (t1 - t0) * 1e3
    metrics = compare(expected, outputs)
    broken = within(metrics, manifest["limits"])
    cfg = LatencyConfig(warmup=args.warmup, min_runs=args.runs, min_seconds=args.seconds)
    rounds = [measure(lambda: runner.run(inputs[0]), cfg)]
    for _ in range(args.sustained):
        time.sleep(args.cooldown)
        rounds.append(measure(lambda: runner.run(inputs[0]), cfg))
    report = {
        "kind": "edgest-device-report", "bundle_version": manifest["bundle_version"],
        "model": manifest["model"], "target": manifest["target"], "precision": manifest["precision"],
        "artifact_sha256": manifest["artifact_sha256"],
        "device": {"name": args.device_name, "os": platform.platform(), "machine": platform.machine(), "cpu": _cpu(),
                   "python": platform.python_version(), "runtime": runner_cls.runtime, "runtime_version": _version(runner_cls.runtime)},
        "accuracy": {**metrics, "samples": len(inputs), "status": "failed" if broken else "passed", "limits": manifest["limits"], "reason": "; ".join(broken)},
        "latency": {**rounds[0], "cold_load_ms": cold_ms, "threads": args.threads,
                    "sustained_p50_ms": [r["p50_ms"] for r in rounds[1:]], "cooldown_s": args.cooldown if args.sustained else 0},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{manifest['model']} on {args.device_name} ({runner_cls.runtime}): accuracy {report['accuracy']['status']} "
          f"(SQNR {metrics['sqnr_db']:.1f} dB), p50 {rounds[0]['p50_ms']:.2f} ms, p90 {rounds[0]['p90_ms']:.2f} ms -> {args.out}")
    return 0 if not broken else 1


if __name__ == "__main__":
    sys.exit(main())
