"""TVM target (targets/tvm): conformance, zoo accuracy untuned, tuning database reuse, aarch64 cross-compile."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

import edgest
from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest.plugins import new_plugin_manager
from edgest.testing import TargetConformance

tvm_plugin = pytest.importorskip("edgest_tvm.plugin", reason="edgest-tvm not installed (pip install -e targets/tvm)")
zoo_plugin = pytest.importorskip("edgest_models.plugin", reason="edgest-models not installed (pip install -e models)")

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
toolchain = pytest.mark.skipif(
    importlib.util.find_spec("tvm") is None, reason="apache-tvm not installed (pip install -e targets/tvm)"
)


class TestTvmConformance(TargetConformance):
    target_name = "tvm"


@pytest.fixture(scope="module")
def registry():
    """Only the zoo and this target: other plugins cannot break these tests."""
    pm = new_plugin_manager(entry_points=False)
    pm.add(zoo_plugin, "models")
    pm.add(tvm_plugin, "tvm")
    return pm.registry


def test_declares_fp32_only_and_names_int8(registry, tmp_path):
    cls = registry.target("tvm")
    assert cls.precisions == ("fp32",)
    assert "int8: not supported by TVM 0.27" in cls.description
    with pytest.raises(Unsupported, match="does not support precision 'int8'; supported: fp32"):
        edgest.compile("squeezetime_tiny", "tvm", precision="int8", out_dir=tmp_path / "r", registry=registry)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("key", "value"), [("tune_trials", -1), ("tune_trials", "8"), ("tvm_target", "riscv"),
                                            ("schedule", "ansor"), ("no_such", 1), ("tune_threads", 0)])
def test_bad_options_are_bad_input(registry, key, value):
    with pytest.raises(BadInput, match=key):
        registry.target("tvm")(**{key: value})


@toolchain
@pytest.mark.parametrize("model", ["squeezetime_tiny", "emov2_tiny_video", "vivit_fa_tiny"])
def test_zoo_model_untuned_passes_accuracy(registry, tmp_path, model):
    report = edgest.compile(model, "tvm", out_dir=tmp_path / "r", registry=registry, latency=FAST, samples=4)
    assert report.status == "passed", report.error
    assert report.check("accuracy").metrics["sqnr_db"] >= 40.0
    d = report.artifact.details
    assert report.artifact.path == "model.so" and d["library_arch"] == d["host_arch"]
    spec = d["target_spec"]
    assert spec["kind"] == "llvm" and spec["mcpu"] and spec["mtriple"] and d["target"].startswith("{")
    assert d["ops"] > 0 and d["kernels"] > 0 and d["tuned"] == {"trials": 0}
    # every kernel got a schedule; TVM's own default pipeline would leave them all as naive loops
    assert d["kernels_default_scheduled"] == d["kernels"]
    assert report.check("latency").metrics["threads"] == 1
    assert json.loads((tmp_path / "r" / "tvm.json").read_text())["schedule"] == "edgest"


@toolchain
def test_unsupported_op_is_named(registry, tmp_path):
    import torch

    class Cummax(torch.nn.Module):
        def forward(self, x):
            return torch.cummax(x, dim=1).values * 2

    with pytest.raises(Unsupported, match=r"target 'tvm' cannot lower op aten\.cummax"):
        edgest.compile(Cummax(), "tvm", input_shape=(1, 8), out_dir=tmp_path / "r", registry=registry, latency=None)
    assert not (tmp_path / "r").exists()


@toolchain
@pytest.mark.slow
def test_tuning_writes_the_database_and_the_second_compile_reuses_it(registry, tmp_path):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 16)).eval()
    db = tmp_path / "db"
    opts = {"tune_trials": 8, "tuning_db": str(db)}
    first = edgest.compile(model, "tvm", input_shape=(1, 32), out_dir=tmp_path / "a", target_options=opts,
                           registry=registry, latency=FAST, samples=2)
    assert first.status == "passed", first.error
    tuned = first.artifact.details["tuned"]
    assert tuned["trials"] == 8 and tuned["tasks"] >= 1 and tuned["tasks_tuned_now"] == tuned["tasks"]
    assert tuned["seconds"] > 0 and tuned["db"].startswith(str(db))
    records = list(db.rglob("database_tuning_record.json"))
    assert records and records[0].stat().st_size > 0
    assert (tmp_path / "a" / "tuning" / "database_tuning_record.json").stat().st_size > 0
    assert first.artifact.details["kernels_from_tuning_db"] >= 1

    second = edgest.compile(model, "tvm", input_shape=(1, 32), out_dir=tmp_path / "b", target_options=opts,
                            registry=registry, latency=FAST, samples=2)
    assert second.status == "passed", second.error
    again = second.artifact.details["tuned"]
    assert again["tasks_tuned_now"] == 0 and again["tasks_from_db"] == tuned["tasks"]
    assert again["seconds"] < 1.0 and second.artifact.details["kernels_from_tuning_db"] >= 1


@toolchain
def test_aarch64_cross_compile_is_not_run_here(registry, tmp_path):
    if shutil.which("aarch64-linux-gnu-g++") is None:
        with pytest.raises(TargetUnavailable, match="apt-get install g\\+\\+-aarch64-linux-gnu"):
            edgest.compile("squeezetime_tiny", "tvm", out_dir=tmp_path / "r", registry=registry,
                           target_options={"tvm_target": "aarch64"})
        pytest.skip("aarch64-linux-gnu-g++ not on PATH (apt-get install g++-aarch64-linux-gnu): cross build not tested")
    report = edgest.compile("squeezetime_tiny", "tvm", out_dir=tmp_path / "r", registry=registry,
                            target_options={"tvm_target": "aarch64"}, latency=FAST, samples=2)
    lib = tmp_path / "r" / "model.so"
    assert lib.read_bytes()[:4] == b"\x7fELF" and report.artifact.details["library_arch"] == "aarch64"
    spec = report.artifact.details["target_spec"]
    assert spec["mtriple"] == "aarch64-linux-gnu" and "+neon" in spec["mattr"]
    assert report.status == "incomplete"
    for check in report.checks:
        assert check.status == "not_run"
        assert "aarch64 library cannot run on this x86_64 host" in check.reason and "qemu-aarch64" in check.reason


@toolchain
def test_aarch64_without_cross_linker_is_unavailable(registry, monkeypatch):
    import edgest_tvm.compiler as compiler

    monkeypatch.setattr(compiler.shutil, "which", lambda name: None)
    with pytest.raises(TargetUnavailable, match="apt-get install g\\+\\+-aarch64-linux-gnu"):
        registry.target("tvm")(tvm_target="aarch64").ensure_available()
