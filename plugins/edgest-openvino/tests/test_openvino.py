"""edgest-openvino's tests: edgest's conformance suite, plus what is specific to OpenVINO IR.

Uses only edgest's public API (``edgest``, ``edgest.testing``), as any third-party plugin would.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgest
from edgest.testing import TargetConformance, tiny_convnet
from edgest_openvino.target import OpenVINOTarget

PACKAGE = Path(__file__).resolve().parents[1] / "edgest_openvino"
SHAPE = (1, 3, 16, 16)


class TestOpenVINOConformance(TargetConformance):
    target_name = "openvino"


@pytest.fixture(scope="module")
def ov() -> Any:
    return pytest.importorskip("openvino", reason="openvino not installed (pip install -e plugins/edgest-openvino)")


@pytest.fixture(scope="module")
def compiled_run(ov: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[edgest.Report, Path]:
    """One edgest compile of the tiny model, threads=2, shared by the tests below."""
    out = tmp_path_factory.mktemp("ov") / "run"
    report = edgest.compile(tiny_convnet(), "openvino", input_shape=SHAPE, out_dir=out, threads=2, samples=4,
                            latency=edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0))
    assert report.status == "passed", report.error
    return report, out


def test_writes_ir_xml_and_bin(compiled_run: tuple[edgest.Report, Path]) -> None:
    report, out = compiled_run
    xml, bin_ = out / "model.xml", out / "model.bin"
    assert report.artifact.path == "model.xml" and report.artifact.format == "xml"
    assert xml.is_file() and bin_.is_file() and bin_.stat().st_size > 0
    details = report.artifact.details
    assert details["files"] == ["model.xml", "model.bin"]
    # edgest's size is the main file's; the whole IR is in details
    assert report.artifact.size_bytes == xml.stat().st_size == details["xml_bytes"]
    assert details["ir_bytes"] == xml.stat().st_size + bin_.stat().st_size


def test_details_record_version_device_and_fp32(ov: Any, compiled_run: tuple[edgest.Report, Path]) -> None:
    report, _ = compiled_run
    details = report.artifact.details
    assert details["openvino_version"] == ov.get_version()
    assert report.artifact.toolchain["openvino"].startswith("2026.4")
    assert details["device"] == "CPU" and details["inference_precision"] == "f32"
    assert details["weights_dtypes"] == ["f32"]  # compress_to_fp16=False kept fp32 weights
    # the CPU plugin's own reading: pinned to f32 even where it would pick bf16 by itself (AMX hosts)
    assert details["execution_precision"] == "f32" and details["execution_devices"] == ["CPU"]
    assert set(details["compute_layers_by_precision"]) == {"f32"} and "FP32" in details["cpu_capabilities"]
    assert details["inputs"][0]["shape"] == "[1,3,16,16]"  # pinned static, not [?,3,?,?]
    assert details["outputs"][0]["shape"] == "[1,5]"


def test_threads_are_honoured(compiled_run: tuple[edgest.Report, Path]) -> None:
    report, out = compiled_run
    assert report.check("latency").metrics["threads"] == 2  # what the runner reported in the child
    for threads in (1, 2):
        runner = OpenVINOTarget().load(out / "model.xml", threads=threads)
        assert runner.threads == threads
        assert runner.compiled.get_property("INFERENCE_NUM_THREADS") == threads
        assert runner.precision == "f32"


def test_runner_matches_eager_and_outputs_survive_the_next_run(compiled_run: tuple[edgest.Report, Path]) -> None:
    import torch

    _, out = compiled_run
    model = tiny_convnet()
    runner = OpenVINOTarget().load(out / "model.xml", threads=1)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(SHAPE, dtype=np.float32) for _ in range(2)]
    kept = [x.copy() for x in xs]
    first = runner.run([xs[0]])
    second = runner.run([xs[1]])
    with torch.no_grad():
        expected = [model(torch.from_numpy(x)).numpy() for x in xs]
    for got, want in zip((first, second), expected):
        assert len(got) == 1 and got[0].dtype == np.float32
        np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-5)
    for x, copy in zip(xs, kept):  # the request reads the caller's arrays in place and leaves them as they were
        np.testing.assert_array_equal(x, copy)
    strided = np.asfortranarray(xs[0])  # not C-contiguous: copied for the request, same result
    np.testing.assert_allclose(runner.run([strided])[0], expected[0], rtol=1e-4, atol=1e-5)


def test_plugin_import_does_not_import_openvino() -> None:
    code = "import sys, edgest_openvino.plugin; sys.exit('openvino' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_uses_only_edgest_public_api() -> None:
    """The point of this example: nothing from edgest's internals (edgest.pipeline, edgest.checks, …)."""
    # the contract modules docs/plugins.md names: the quantizer's, quiet imports, op coverage's records, debug's probes
    allowed = {"edgest", "edgest.testing", "edgest.quantization", "edgest.quiet", "edgest.coverage", "edgest.debug"}
    for source in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for mod in modules:
                if mod == "edgest" or mod.startswith("edgest."):
                    assert mod in allowed, f"{source.name} imports {mod}"
