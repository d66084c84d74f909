"""CUDA target (targets/cuda): AOTInductor packages. Without a GPU it compiles and runs on the CPU,
which is what CI covers (two AOTInductor compiles: the suite's tiny convnet and squeezetime_tiny);
the GPU-only tests run where torch sees a CUDA device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import edgest
import edgest_cuda.plugin
import edgest_models.plugin
from edgest.capture import capture
from edgest.checks.accuracy import compare
from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest.plugins import new_plugin_manager
from edgest.testing import TargetConformance, tiny_convnet
from edgest_cuda.target import CudaTarget, cpu_precision_reason, prepare_program, read_package_metadata

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
ROOT = Path(__file__).resolve().parents[2]
HAS_GPU = torch.cuda.is_available()
gpu = pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU and a CUDA build of torch")
cpu_only = pytest.mark.skipif(HAS_GPU, reason="checks the behaviour on a host without a CUDA device")


class TestCudaConformance(TargetConformance):
    target_name = "cuda"


@pytest.fixture(scope="module")
def registry():
    """Only the zoo and this target: other plugins cannot break these tests."""
    pm = new_plugin_manager(entry_points=False)
    pm.add(edgest_models.plugin, "models")
    pm.add(edgest_cuda.plugin, "cuda")
    return pm.registry


@pytest.fixture(scope="module")
def squeezetime_default(registry, tmp_path_factory):
    """squeezetime_tiny with the default options: CPU here, the GPU where there is one."""
    out = tmp_path_factory.mktemp("cuda") / "run"
    return out, edgest.compile("squeezetime_tiny", "cuda", out_dir=out, registry=registry, latency=FAST)


def test_squeezetime_tiny_compiles_runs_and_matches_eager(squeezetime_default):
    out, report = squeezetime_default
    assert report.status == "passed", report.error
    acc = report.check("accuracy")
    assert acc.metrics["sqnr_db"] >= 40.0 and acc.metrics["top1_agreement"] == 1.0
    assert report.check("latency").metrics["p50_ms"] > 0
    art = report.artifact
    assert art.format == "pt2" and (out / "model.pt2").is_file() and art.size_bytes > 0 and art.sha256
    device = "cuda" if HAS_GPU else "cpu"
    assert art.details["device"] == device and art.details["package_device"] == device
    assert art.details["precision"] == "fp32" and art.details["freezing"] is True
    meta = read_package_metadata(out / "model.pt2")
    assert meta["edgest.device"] == device and meta["edgest.precision"] == "fp32"


SHARED_RUNTIME_PROBE = """
import ctypes, json, sys
import numpy as np
import torch
from edgest_cuda.target import CudaTarget

def global_cxx():  # std::locale::classic(), defined only by libstdc++
    return hasattr(ctypes.CDLL(None), "_ZNSt6locale7classicEv")

before = global_cxx()
runner = CudaTarget(device=sys.argv[2]).load(sys.argv[1], threads=1)
(y,) = runner.run([np.zeros(json.loads(sys.argv[3]), dtype=np.float32)])
print(json.dumps({"before": before, "after": global_cxx(), "finite": bool(np.isfinite(y).all())}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libstdc++ and its symbol scopes are Linux's")
def test_loading_a_package_makes_the_cxx_runtime_global_first(registry, squeezetime_default):
    """A package's library that does not link libstdc++ must bind to the one torch loaded (on a torch
    2.11.0+cu130 image, every package segfaulted in std::regex while loading otherwise)."""
    out, report = squeezetime_default
    shape = list(registry.model("squeezetime_tiny").spec.input.shape)
    proc = subprocess.run([sys.executable, "-c", SHARED_RUNTIME_PROBE, str(out / "model.pt2"),
                           report.artifact.details["device"], str(shape)], capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    if seen["before"]:
        pytest.skip("libstdc++ is global in this Python from the start (linked or preloaded): nothing to show")
    assert seen == {"before": False, "after": True, "finite": True}


def test_loading_skips_torchs_host_isa_probe(registry, squeezetime_default, monkeypatch):
    """torch's aoti_load_package compiles probe programs to name this CPU's ISA (most of the cuda target's
    cold load on a CPU; ~50 s on the H200 image) only to log a mismatch; edgest's loader does without."""
    from torch._inductor import codecache

    def probe(*_):
        raise AssertionError("the host ISA probe ran")

    monkeypatch.setattr(codecache, "get_device_information", probe)
    out, _ = squeezetime_default
    runner = CudaTarget(device="cuda" if HAS_GPU else "cpu").load(out / "model.pt2", threads=1)
    (y,) = runner.run([torch.zeros(*registry.model("squeezetime_tiny").spec.input.shape).numpy()])
    assert y.shape[0] == 1 and np.isfinite(y).all()


def test_a_package_with_weights_outside_its_library_is_left_to_torchs_loader(tmp_path, squeezetime_default):
    """Weights stored as ``data/weights/`` (``package_constants_in_so=False``, pickled) are loaded by torch's
    ``load_pt2``, which edgest's direct loader skips: such a package goes to torch's loader."""
    from edgest_cuda.device import has_external_weights

    beside = tmp_path / "beside.pt2"
    with zipfile.ZipFile(beside, "w") as zf:
        zf.writestr("m/data/aotinductor/model/x.wrapper.so", b"")
        zf.writestr("m/data/weights/weight_0", b"")
    assert has_external_weights(beside)
    assert not has_external_weights(squeezetime_default[0] / "model.pt2")


@cpu_only
def test_default_device_is_cpu_without_a_gpu_and_cuda_is_unavailable():
    assert CudaTarget.unavailable_reason() is None  # the CPU mode works
    assert CudaTarget().options == {"device": "cpu", "precision": "fp32", "channels_last": False,
                                    "freezing": True, "cudagraphs": False}
    with pytest.raises(TargetUnavailable, match=r"device 'cuda' requested but torch .* sees no CUDA device.*device='cpu'"):
        CudaTarget(device="cuda").ensure_available()


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_a_cpu_without_it_is_unsupported_naming_the_fix(registry, tmp_path, monkeypatch, precision):
    monkeypatch.setattr("edgest.host.isa_features", lambda: ("avx2", "avx512f", "avx512bw", "avx512vl"))
    with pytest.raises(Unsupported) as err:
        edgest.compile(tiny_convnet(), "cuda", input_shape=(1, 3, 16, 16), out_dir=tmp_path / "run",
                       precision=precision, target_options={"precision": precision, "device": "cpu"},
                       registry=registry, latency=None)
    msg = str(err.value)
    assert f"target 'cuda' precision '{precision}' on the CPU: this CPU has no native {precision}" in msg
    assert "it has: AVX2, AVX-512 (F/BW/VL))" in msg and "slower than fp32" in msg
    assert "NVIDIA GPU and a CUDA build of torch" in msg and "precision 'fp32'" in msg
    assert not (tmp_path / "run").exists()


def test_cpu_precision_needs_the_isa_and_onednn(monkeypatch):
    bf16_cpu = ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16")
    assert cpu_precision_reason("fp32", ("avx2",)) is None
    assert "no native fp16 (avx512_fp16 or amx_fp16 or asimdhp" in cpu_precision_reason("fp16", bf16_cpu)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert cpu_precision_reason("bf16", bf16_cpu) is None
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert cpu_precision_reason("bf16", bf16_cpu) == f"torch {torch.__version__}'s oneDNN does not run bf16 on this CPU"


@pytest.mark.skipif(cpu_precision_reason("bf16") is not None,
                    reason=f"AOTInductor bf16 on the CPU: {cpu_precision_reason('bf16')}")
def test_bf16_on_a_cpu_with_native_bf16_compiles_runs_and_passes(registry, tmp_path):
    out = tmp_path / "run"
    report = edgest.compile(tiny_convnet(), "cuda", input_shape=(1, 3, 16, 16), out_dir=out, precision="bf16",
                            target_options={"device": "cpu"}, registry=registry, latency=FAST)
    assert report.status == "passed", report.error
    assert report.check("accuracy").metrics["sqnr_db"] >= 25.0
    details = report.artifact.details
    assert details["precision"] == "bf16" and details["package_device"] == "cpu" and "bf16" in details["host_isa"]
    assert read_package_metadata(out / "model.pt2")["edgest.precision"] == "bf16"
    runner = CudaTarget(device="cpu").load(out / "model.pt2", threads=1)
    (y,) = runner.run([torch.randn(1, 3, 16, 16).numpy()])
    assert y.dtype == "float32" and runner.dtype == torch.bfloat16


def test_bad_options_are_bad_input():
    with pytest.raises(BadInput, match="unknown cuda option 'colour'; available: device, precision"):
        CudaTarget(colour="red")
    with pytest.raises(BadInput, match="cuda option precision='int8' is not one of fp32, fp16, bf16"):
        CudaTarget(precision="int8")
    with pytest.raises(BadInput, match="device must be"):
        CudaTarget(device="tpu")
    with pytest.raises(BadInput, match="cuda option cudagraphs must be bool, not 'yes'"):
        CudaTarget(cudagraphs="yes")
    assert CudaTarget(device="cpu").options == {"device": "cpu", "precision": "fp32", "channels_last": False,
                                                "freezing": True, "cudagraphs": False}


def test_prepare_program_casts_a_copy_and_keeps_the_callers_program(registry):
    """fp16 + channels-last re-export (what the GPU path compiles), checked on the CPU without Inductor."""
    entry = registry.model("vivit_fa_tiny")
    torch.manual_seed(0)
    module = entry.build()
    x = torch.randn(*entry.spec.input.shape)
    program = capture(module, (x,))
    before = {k: v.clone() for k, v in program.state_dict.items()}
    with torch.no_grad():
        reference = module(x).numpy()
    prepared, example, facts = prepare_program(program, (x,), "cpu", "fp16", channels_last=True)
    assert facts["reexported"] and example[0].dtype == torch.float16
    assert example[0].is_contiguous(memory_format=torch.channels_last_3d)
    assert all(v.dtype == torch.float16 for v in prepared.state_dict.values() if v.is_floating_point())
    # the caller's program is untouched: same dtypes, same values
    assert all(torch.equal(program.state_dict[k], v) for k, v in before.items())
    with torch.no_grad():
        out = prepared.module()(*example)
    m = compare([reference], [out.float().numpy()])
    assert m["sqnr_db"] >= 25.0 and m["top1_agreement"] == 1.0
    untouched, same, _ = prepare_program(program, (x,), "cpu", "fp32", channels_last=False)
    assert untouched is program and same[0] is x


@cpu_only
@pytest.mark.parametrize("script,args", [("cuda_gpu.py", ["--batches", "1"]), ("cuda_gpu_zoo.py", ["--json", "x.json"]),
                                         ("cuda_gpu_smoke.py", [])])
def test_gpu_bench_scripts_exit_with_one_clear_line_without_a_gpu(tmp_path, script, args):
    env = {k: v for k, v in os.environ.items() if k not in ("EDGEST_LOAD_PLUGINS", "EDGEST_DISABLE_PLUGIN_AUTOLOAD")}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs an NVIDIA GPU" in lines[0] and "sees no CUDA device" in lines[0], proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_fp32_turns_tf32_off():
    """torch runs cuDNN convolutions in TF32 by default; an fp32 package must not."""
    from edgest_cuda.target import no_tf32

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        no_tf32()
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@gpu
@pytest.mark.parametrize("options,precision", [
    ({"precision": "fp16", "channels_last": True}, "fp16"),
    ({"precision": "fp32", "cudagraphs": False}, "fp32"),
])
def test_gpu_compiles_and_passes(registry, tmp_path, options, precision):
    report = edgest.compile("squeezetime_tiny", "cuda", out_dir=tmp_path / "run", precision=precision,
                            target_options={"device": "cuda", **options}, registry=registry, latency=FAST)
    assert report.status == "passed", report.error
    assert report.artifact.details["package_device"] == "cuda" and report.artifact.details["gpu"]


@gpu
def test_gpu_bench_runs_a_tiny_configuration(tmp_path):
    from edgest_cuda.gpu_bench import BenchConfig, run

    result = run(BenchConfig(model="squeezetime_tiny", batches=(1, 2), precisions=("fp32",), warmup=2, iters=5),
                 log=lambda _: None)
    rows = result["rows"]
    assert {r["variant"] for r in rows} == {"eager", "compile", "aoti", "aoti-graph"}
    assert all(r["status"] == "ok" and r["median_ms"] > 0 and r["sqnr_db"] >= 40 for r in rows), rows
