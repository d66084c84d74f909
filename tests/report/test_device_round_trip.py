"""Bundle → a fresh venv holding only the runtime and NumPy → run_on_device.py → merge."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import py_compile
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import edgest
from edgest.bundle import build_bundle, merge_device_reports
from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput
from edgest.report.writers import read_json, write_reports


@pytest.fixture(scope="module")
def onnx_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "onnx"
    edgest.compile("squeezetime_tiny", "onnx", out_dir=out, latency=LatencyConfig(warmup=1, min_runs=3, min_seconds=0))
    return out


def test_compile_report_states_weights_stage_times_and_latency_protocol(onnx_run):
    report = read_json(onnx_run / "report.json")
    assert report.weights == {"kind": "random-init"}
    assert {"build", "capture", "lower", "checks"} <= set(report.stage_seconds)
    md = (onnx_run / "report.md").read_text()
    assert "- Weights: random initialisation" in md and "- Time per stage: build " in md
    assert "Protocol: on the host: p50 and p90 of " in md and '"passed" means measured' in md
    assert "## Target details" in md and "- Details:" not in md


def test_bundle_holds_artifact_data_and_a_runtime_only_script(onnx_run, tmp_path):
    import edgest_onnx.device

    bundle = build_bundle(onnx_run, tmp_path / "bundle")
    names = sorted(p.name for p in bundle.iterdir() if not p.name.startswith("."))  # .edgest.json: the ownership marker
    assert names == ["README.txt", "data", "edgest_check", "edgest_device_runner.py", "manifest.json", "model.onnx",
                     "run_on_device.py"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["samples"] == 8 and manifest["format"] == "onnx" and manifest["input_shape"] == [1, 3, 8, 64, 64]
    assert manifest["runtime"] == "onnxruntime" and manifest["runner"] == "edgest_device_runner.py"
    # the runner is the ONNX target's own module, copied: the core's script names no runtime
    assert (bundle / "edgest_device_runner.py").read_text() == Path(edgest_onnx.device.__file__).read_text()
    # the two scripts import no torch and no edgest (edgest_check's modules: see the runtime-only venv below)
    source = (bundle / "run_on_device.py").read_text() + (bundle / "edgest_device_runner.py").read_text()
    assert "import torch" not in source and "onnxruntime" not in (bundle / "run_on_device.py").read_text()
    assert "edgest." not in source.replace("edgest.checks", "")


def _runtime_venv(where: Path, install: list[list[str]]) -> tuple[Path, dict[str, str]]:
    """A fresh venv holding only what the bundle's manifest says the runtime needs."""
    venv.EnvBuilder(with_pip=True).create(where)
    py = where / "bin" / "python"
    for args in install:
        pip = subprocess.run([str(py), "-m", "pip", "install", "-q", *args], capture_output=True, text=True, timeout=900)
        if pip.returncode != 0:
            pytest.skip(f"cannot install {' '.join(args)} into a fresh venv here: {pip.stderr.strip().splitlines()[-1:]}")
    return py, {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


#: target → (what must be absent from its runtime-only venv, runtime name reported by the bundle)
ROUND_TRIPS = {
    "onnx": (("torch", "edgest", "onnx"), "onnxruntime"),
    # ExecuTorch's Python runtime links libtorch, so torch is there; its exporter-side dependencies are not
    "executorch": (("edgest", "torchao", "coremltools"), "executorch"),
    "tvm": (("torch", "edgest"), "apache-tvm"),
    # a plugin's target (plugins/edgest-openvino) bundles through the same contract; its .bin travels too
    "openvino": (("torch", "edgest", "edgest_openvino"), "openvino"),
}
#: round trips that stay in the default suite (the runtime's wheel alone, no torch)
FAST_ROUND_TRIPS = ("onnx", "openvino")


#: a venv with torch (executorch) or TVM takes minutes to unpack: those round trips run with the slow
#: tests (`make test-slow`); ONNX Runtime's and OpenVINO's stay in the default suite
@pytest.mark.parametrize("target", [pytest.param(t, marks=pytest.mark.slow) if t not in FAST_ROUND_TRIPS else t
                                    for t in sorted(ROUND_TRIPS)])
def test_round_trip_in_a_runtime_only_venv(target, onnx_run, tmp_path_factory, tmp_path):
    if target == "onnx":
        run = onnx_run
    else:
        pytest.importorskip({"executorch": "executorch", "tvm": "tvm", "openvino": "openvino"}[target],
                            reason=f"{target} toolchain not installed")
        run = tmp_path_factory.mktemp("run") / target
        edgest.compile("squeezetime_tiny", target, out_dir=run, latency=LatencyConfig(warmup=1, min_runs=3, min_seconds=0))
    bundle = build_bundle(run, tmp_path / "bundle")
    artifact = read_json(run / "report.json").artifact
    if not (run / artifact.path).is_dir():  # companions the target lists travel with the artifact (OpenVINO's .bin)
        assert all((bundle / name).is_file() for name in artifact.details.get("files", [artifact.path]))
    manifest = json.loads((bundle / "manifest.json").read_text())
    py, clean = _runtime_venv(tmp_path / "device-venv", manifest["runtime_install"])
    absent, runtime = ROUND_TRIPS[target]
    probe = subprocess.run([str(py), "-c", f"import importlib.util as u; print([m for m in {list(absent)!r} if u.find_spec(m)])"],
                           capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr  # truly runtime-only
    done = subprocess.run([str(py), "run_on_device.py", "--runs", "5", "--seconds", "0", "--device-name", "venv-device"],
                          cwd=bundle, capture_output=True, text=True, timeout=600, env=clean)
    assert done.returncode == 0, done.stderr[-2000:]
    device = json.loads((bundle / "device-report.json").read_text())
    assert device["accuracy"]["status"] == "passed" and device["accuracy"]["sqnr_db"] > 60
    assert device["device"]["runtime"] == runtime
    built_with = read_json(run / "report.json").artifact.toolchain[runtime]
    assert device["device"]["runtime_version"] == built_with.partition("+")[0]
    lines = merge_device_reports(run, [bundle / "device-report.json"])
    assert lines and "venv-device" in lines[0]
    merged = read_json(run / "report.json")
    assert any(c.host.get("name") == "venv-device" and c.kind == "latency" for c in merged.checks)
    assert "venv-device" in (run / "report.md").read_text()


def test_bundle_script_refuses_a_corrupted_artifact(onnx_run, tmp_path):
    bundle = build_bundle(onnx_run, tmp_path / "bundle")
    model = bundle / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    done = subprocess.run([sys.executable, "run_on_device.py"], cwd=bundle, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "model.onnx does not match the bundle's sha256" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "words"), [
    (["--out", "manifest.json"], "--out 'manifest.json' exists and is not a device report"),  # it was overwritten
    (["--out", "model.onnx"], "--out 'model.onnx' exists and is not a device report"),
    (["--out", "."], "--out '.' is a folder"),  # IsADirectoryError traceback, after the whole run
    (["--out", "gone/r.json"], "--out 'gone/r.json' is in 'gone', which is not a folder"),
    (["--threads", "-3"], "--threads must be 1 or more"),
    (["--sustained", "-1"], "--sustained must be 0 or more"),
    (["--cooldown", "inf"], "--cooldown must be a finite number of seconds"),
])
def test_bundle_script_refuses_bad_arguments_in_one_line_and_keeps_the_bundle_whole(onnx_run, tmp_path, args, words):
    bundle = build_bundle(onnx_run, tmp_path / "bundle")
    before = {p.relative_to(bundle): p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
    done = subprocess.run([sys.executable, "run_on_device.py", *args], cwd=bundle, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 2 and done.stderr.splitlines() == [done.stderr.strip()], done.stderr  # argparse's code
    assert done.stderr.startswith(f"error: {words}"), done.stderr
    assert {p.relative_to(bundle): p.read_bytes() for p in bundle.rglob("*") if p.is_file()} == before


def test_bundle_script_replaces_its_own_earlier_report(onnx_run, tmp_path):
    bundle = build_bundle(onnx_run, tmp_path / "bundle")
    for name in ("first", "second"):
        done = subprocess.run([sys.executable, "run_on_device.py", "--runs", "2", "--seconds", "0", "--device-name",
                               name, "--out", "r.json"], cwd=bundle, capture_output=True, text=True, timeout=300,
                              check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads((bundle / "r.json").read_text())["device"]["name"] == name
    assert not list(bundle.glob(".*partial*"))


def test_merge_refuses_a_report_for_another_artifact(onnx_run, tmp_path):
    fake = {"kind": "edgest-device-report", "model": "x", "target": "onnx", "precision": "fp32", "artifact_sha256": "0" * 64,
            "device": {"name": "d"}, "accuracy": {}, "latency": {}}
    path = tmp_path / "device-report.json"
    path.write_text(json.dumps(fake))
    with pytest.raises(BadInput, match="another artifact"):
        merge_device_reports(onnx_run, [path])


def _as_other_target(run: Path, where: Path, target: str, fmt: str, artifact: str, toolchain: dict[str, str]) -> Path:
    """A copy of ``run`` whose report names another target's artifact (for targets that cannot lower here)."""
    shutil.copytree(run, where)
    (where / artifact).write_bytes(b"serialized engine stand-in")
    report = read_json(where / "report.json")
    art = dataclasses.replace(report.artifact, target=target, path=artifact, format=fmt, toolchain=toolchain,
                              sha256=hashlib.sha256((where / artifact).read_bytes()).hexdigest())
    write_reports(dataclasses.replace(report, target=target, artifact=art), where)
    return where


def _run_script(bundle: Path, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "run_on_device.py", "--runs", "3", "--seconds", "0"], cwd=bundle,
                          capture_output=True, text=True, timeout=300)


def test_tensorrt_bundle_names_its_runtime_when_missing(onnx_run, tmp_path):
    pytest.importorskip("onnxruntime")
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here: the guard is not reachable")
    run = _as_other_target(onnx_run, tmp_path / "trt-run", "tensorrt", "plan", "model.plan", {"tensorrt": "10.13.3.9"})
    bundle = build_bundle(run, tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["runtime_install"] == [["numpy", "tensorrt==10.13.3.9", "torch"]]
    assert "python -m pip install numpy tensorrt==10.13.3.9 torch" in (bundle / "README.txt").read_text()
    py_compile.compile(str(bundle / "run_on_device.py"), doraise=True)
    done = _run_script(bundle)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "the tensorrt runtime is not installed here" in done.stderr and "pip install numpy tensorrt==10.13.3.9" in done.stderr
    assert not (bundle / "device-report.json").exists()


def test_coreml_bundle_is_built_and_refuses_to_run_off_macos(tmp_path):
    pytest.importorskip("coremltools", reason="coremltools not installed")
    if sys.platform == "darwin":
        pytest.skip("on macOS the Core ML bundle runs for real (see run_on_device.py); this test covers other hosts")
    run = tmp_path / "coreml"
    report = edgest.compile("squeezetime_tiny", "coreml", out_dir=run, latency=LatencyConfig(warmup=1, min_runs=3, min_seconds=0))
    assert report.artifact is not None and report.artifact.format == "mlpackage"
    bundle = build_bundle(run, tmp_path / "bundle")
    assert (bundle / "model.mlpackage" / "Manifest.json").is_file()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["runtime_install"][0][0] == "numpy" and manifest["runtime_install"][0][1].startswith("coremltools==")
    py_compile.compile(str(bundle / "run_on_device.py"), doraise=True)
    done = _run_script(bundle)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Core ML prediction needs macOS" in done.stderr
