"""Core ML target (targets/coreml): conversion of the zoo at fp32 and fp16, details, honest "incomplete" off macOS.

Core ML prediction needs macOS. On Linux the package is built and its interface read back,
but nothing can run it (coremltools has no Core ML runtime there): the checks are not run,
the report is "incomplete" and `edgest compile` exits 1. On macOS the suite's own
lower → run → accuracy test runs instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

import edgest
from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest.plugins import new_plugin_manager
from edgest.testing import TargetConformance, tiny_convnet

cm_plugin = pytest.importorskip("edgest_coreml.plugin", reason="edgest-coreml not installed (pip install -e targets/coreml)")
zoo_plugin = pytest.importorskip("edgest_models.plugin", reason="edgest-models not installed (pip install -e models)")

from edgest_coreml.convert import tree_sha256, verify_package  # noqa: E402
from edgest_coreml.target import CoreMLTarget, cannot_run_here  # noqa: E402

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
ON_MAC = sys.platform == "darwin"
LINUX_REASON = (
    "target 'coreml' cannot run here: Core ML prediction needs macOS (this host is Linux); "
    "the .mlpackage is built — run it on a Mac or with an edgest device bundle"
)
toolchain = pytest.mark.skipif(importlib.util.find_spec("coremltools") is None,
                               reason="coremltools not installed (pip install -e targets/coreml)")
off_mac = pytest.mark.skipif(ON_MAC, reason="checks the behaviour off macOS")
on_mac = pytest.mark.skipif(not ON_MAC, reason="Core ML prediction needs macOS")


def _assert_not_run_off_mac(report: edgest.Report, run_dir: Path) -> None:
    """The honest outcome off macOS: artifact written and described, checks not run, never passed."""
    reason = cannot_run_here()
    if sys.platform.startswith("linux"):
        assert reason == LINUX_REASON
    assert report.status == "incomplete"
    pkg = run_dir / report.artifact.path
    assert report.artifact.path == "model.mlpackage" and (pkg / "Manifest.json").is_file()
    assert report.artifact.format == "mlpackage" and report.artifact.size_bytes > 0
    assert report.artifact.sha256 == ""  # a folder: its digest is details["sha256_tree"]
    assert report.artifact.details["sha256_tree"] == tree_sha256(pkg)
    for kind in ("accuracy", "latency"):
        check = report.check(kind)
        assert check.status == "not_run" and check.reason == reason and not check.metrics
    saved = json.loads((run_dir / "report.json").read_text())
    assert saved["status"] == "incomplete" and saved["artifact"]["details"]["sha256_tree"] == tree_sha256(pkg)


class TestCoreMLConformance(TargetConformance):
    target_name = "coreml"

    def test_lower_run_and_accuracy(self, runnable, registry, tmp_path) -> None:
        if ON_MAC:
            super().test_lower_run_and_accuracy(runnable, registry, tmp_path)
            return
        report = edgest.compile(tiny_convnet(), self.target_name, input_shape=self.input_shape,
                                out_dir=tmp_path / "run", registry=registry, latency=FAST, samples=8)
        _assert_not_run_off_mac(report, tmp_path / "run")


@pytest.fixture(scope="module")
def registry():
    """Only the zoo and this target: other plugins cannot break these tests."""
    pm = new_plugin_manager(entry_points=False)
    pm.add(zoo_plugin, "models")
    pm.add(cm_plugin, "coreml")
    return pm.registry


def _program(registry, name: str):
    """A zoo model captured by edgest, already in the ATen dialect (decomposed once for both precisions)."""
    import torch

    from edgest.capture import capture

    entry = registry.model(name)
    torch.manual_seed(0)
    example = (torch.randn(*entry.spec.input.shape),)
    return capture(entry.build(), example).run_decompositions({}), example, entry.spec


@toolchain
@pytest.mark.parametrize("name", ["squeezetime_tiny", "emov2_tiny_video", "vivit_fa_tiny"])
def test_zoo_model_converts_at_fp32_and_fp16(registry, name, tmp_path) -> None:
    program, example, spec = _program(registry, name)
    weights = {}
    for precision, compute in (("fp32", "FLOAT32"), ("fp16", "FLOAT16")):
        lowered = CoreMLTarget(precision=precision).lower(program, example, tmp_path / precision)
        d = lowered.details
        assert lowered.path == tmp_path / precision / "model.mlpackage" and lowered.path.is_dir()
        assert d["compute_precision"] == compute and d["compute_units"] == "ALL"
        assert d["minimum_deployment_target"] == "iOS17" and d["specification_version"] == 8
        assert d["coremltools"] == importlib.metadata.version("coremltools") and d["source_dialect"] == "ATEN"
        ops = d["mil_ops"]
        assert ops["non_const"] > 0 and ops["total"] >= ops["non_const"] and 0 < len(ops["top"]) <= 10
        assert sum(ops["top"].values()) <= ops["total"] and ops["types"] >= len(ops["top"])
        # fp32 in and out at both precisions, the model's own shapes
        assert d["interface"]["inputs"] == [{"name": "x", "shape": list(spec.input.shape), "dtype": "float32"}]
        assert d["interface"]["outputs"] == [{"name": "output", "shape": [1, spec.num_classes], "dtype": "float32"}]
        assert re.fullmatch(r"[0-9a-f]{64}", d["sha256_tree"]) and d["sha256_tree"] == tree_sha256(lowered.path)
        assert "Data/com.apple.CoreML/model.mlmodel" in d["files"] and "Manifest.json" in d["files"]
        assert d["seconds"]["convert"] > 0 and isinstance(d["warnings"], list)
        assert d["runs_here"] is ON_MAC and ("numerics" in d) is not ON_MAC
        json.dumps(d)
        weights[precision] = (lowered.path / "Data/com.apple.CoreML/weights/weight.bin").stat().st_size
    # FLOAT16 really took effect: the weights are stored at half the size
    assert weights["fp16"] < 0.6 * weights["fp32"], weights


@pytest.fixture(scope="module")
def tiny_package(tmp_path_factory):
    """tiny_convnet lowered with non-default options (straight from capture: the TRAINING dialect)."""
    import torch

    from edgest.capture import capture

    if importlib.util.find_spec("coremltools") is None:
        pytest.skip("coremltools not installed (pip install -e targets/coreml)")
    x = torch.randn(1, 3, 16, 16)
    target = CoreMLTarget(minimum_deployment_target="iOS16", compute_units="CPU_ONLY")
    return target.lower(capture(tiny_convnet(), (x,)), (x,), tmp_path_factory.mktemp("cm"))


def test_options_reach_the_package_and_bad_ones_are_refused(tiny_package) -> None:
    d = tiny_package.details
    assert d["minimum_deployment_target"] == "iOS16" and d["specification_version"] == 7
    assert d["compute_units"] == "CPU_ONLY" and d["compute_precision"] == "FLOAT32" and d["source_dialect"] == "TRAINING"
    assert d["interface"]["inputs"] == [{"name": "input", "shape": [1, 3, 16, 16], "dtype": "float32"}]
    with pytest.raises(BadInput, match="unknown coreml option 'quantize'"):
        CoreMLTarget(quantize=True)
    with pytest.raises(BadInput, match="compute_units='NPU' is not one of ALL, CPU_ONLY"):
        CoreMLTarget(compute_units="NPU")
    with pytest.raises(BadInput, match="precision='int8'"):
        CoreMLTarget(precision="int8")
    # the package read back must match the model it came from
    with pytest.raises(Unsupported, match=r"wrong interface: input input is float32 \[1, 3, 16, 16\], the model takes float32 \[1, 3, 32, 32\]"):
        verify_package(tiny_package.path, [("input", (1, 3, 32, 32), "float32")], [("output", (1, 5), "float32")], 7)


def test_macos_runner_feeds_names_and_dtypes_from_the_spec(tiny_package, monkeypatch) -> None:
    """The macOS code path, with Core ML's MLModel faked (it cannot run here): names, dtypes, order, units."""
    import coremltools as ct
    import numpy as np

    calls = {}

    class FakeMLModel:
        __proxy__ = object()  # what a loaded model has

        def __init__(self, path, compute_units):
            calls["init"] = (path, compute_units)
            self._spec = ct.utils.load_spec(path)

        def get_spec(self):
            return self._spec

        def predict(self, feed):
            calls["feed"] = {k: (v.dtype, v.shape, v.flags["C_CONTIGUOUS"]) for k, v in feed.items()}
            return {"output": np.full((1, 5), 0.5, np.float16)}

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(ct.models, "MLModel", FakeMLModel)
    runner = CoreMLTarget(compute_units="CPU_ONLY").load(tiny_package.path, threads=4)
    x = np.asfortranarray(np.ones((1, 3, 16, 16), np.float64))
    (y,) = runner.run([x])
    assert calls["init"] == (str(tiny_package.path), ct.ComputeUnit.CPU_ONLY)
    assert calls["feed"] == {"input": (np.dtype(np.float32), (1, 3, 16, 16), True)}
    assert y.dtype == np.float32 and y.shape == (1, 5) and runner.threads == 0
    with pytest.raises(BadInput, match="takes 1 input"):
        runner.run([x, x])


@toolchain
def test_an_op_coremltools_cannot_convert_is_named_with_its_line(tmp_path) -> None:
    import torch
    from torch import nn

    from edgest.capture import capture

    class CumMax(nn.Module):
        def forward(self, x):
            return torch.cummax(x, dim=1)[0].mean(-1)

    class GridSample3d(nn.Module):  # the converter exists but Core ML's resample is 2-D only
        def forward(self, x):
            return torch.nn.functional.grid_sample(x, torch.zeros(1, 2, 2, 2, 3), align_corners=False)

    x = torch.randn(1, 4, 8)
    with pytest.raises(Unsupported, match=r"cannot lower op aten\.cummax\.default \(from test_coreml\.py:\d+\): coremltools has no converter"):
        CoreMLTarget().lower(capture(CumMax(), (x,)), (x,), tmp_path / "a")
    x = torch.randn(1, 2, 4, 6, 6)
    with pytest.raises(Unsupported, match=r"cannot lower op aten\.grid_sampler\.default \(from test_coreml\.py:\d+\): its converter failed: ValueError: .*rank 4"):
        CoreMLTarget().lower(capture(GridSample3d(), (x,)), (x,), tmp_path / "b")
    assert not (tmp_path / "a" / "model.mlpackage").exists()


@off_mac
def test_load_off_macos_is_unavailable_with_the_reason(tmp_path) -> None:
    with pytest.raises(TargetUnavailable) as err:
        CoreMLTarget().load(tmp_path / "model.mlpackage", threads=1)
    assert str(err.value) == cannot_run_here()
    if sys.platform.startswith("linux"):
        assert str(err.value) == LINUX_REASON


@toolchain
def test_cli_compile_reports_incomplete_off_macos(tmp_path, monkeypatch, capsys) -> None:
    """`edgest compile --model squeezetime_tiny --target coreml --out X`: exit 1, table says not_run and why."""
    from edgest.cli import main

    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    out = tmp_path / "cm"
    with pytest.raises(SystemExit) as exit_:
        main(["compile", "--model", "squeezetime_tiny", "--target", "coreml", "--out", str(out), "--samples", "2"])
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    if ON_MAC:
        assert exit_.value.code == 0 and report["status"] == "passed", printed
        return
    assert exit_.value.code == 1, printed
    assert report["status"] == "incomplete"
    for kind in ("accuracy", "latency"):
        assert re.search(rf"{kind}\W+not_run\W+{re.escape(cannot_run_here())}", printed), printed
    assert re.search(r"status:\s+incomplete", printed)
    details = report["artifact"]["details"]
    assert details["mil_ops"]["non_const"] > 0 and details["compute_precision"] == "FLOAT32"
    assert details["sha256_tree"] == tree_sha256(out / "model.mlpackage")
    assert report["artifact"]["toolchain"]["coremltools"] == importlib.metadata.version("coremltools")


@on_mac
def test_fp16_runs_within_the_fp16_limits_on_macos(registry, tmp_path) -> None:
    report = edgest.compile(tiny_convnet(), "coreml", input_shape=(1, 3, 16, 16), out_dir=tmp_path / "run",
                            precision="fp16", target_options={"precision": "fp16"}, registry=registry,
                            latency=FAST, samples=8)
    assert report.status == "passed", report.error
    assert report.artifact.details["compute_precision"] == "FLOAT16"
