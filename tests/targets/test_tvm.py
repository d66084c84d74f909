"""TVM target (targets/tvm): conformance, zoo accuracy untuned, tuning database reuse, aarch64 cross-compile."""

from __future__ import annotations

import importlib.util
import json
import platform
import shutil

import pytest

import edgest
from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest.plugins import new_plugin_manager
from edgest.testing import TargetConformance
from edgest.testing.weights import write_responsive_weights

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
@pytest.mark.parametrize("model", ["squeezetime_tiny", *(pytest.param(m, marks=pytest.mark.slow)  # suite time: one model by default
                                                        for m in ("emov2_tiny_video", "vivit_fa_tiny"))])
def test_zoo_model_untuned_passes_accuracy(registry, tmp_path, model):
    weights = write_responsive_weights(registry.model(model), tmp_path / "w.pt") if "emov2" in model else None
    report = edgest.compile(model, "tvm", out_dir=tmp_path / "r", registry=registry, latency=FAST, samples=4,
                            weights=weights, task_samples=0)
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
@pytest.mark.slow
def test_default_tuning_db_is_next_to_the_artifact_and_reused_on_recompile(registry, tmp_path, monkeypatch):
    import torch

    monkeypatch.delenv("EDGEST_TVM_DB", raising=False)
    monkeypatch.delenv("EDGEST_TVM_TUNE_TRIALS", raising=False)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 16)).eval()
    run = tmp_path / "run"
    kwargs = {"input_shape": (1, 32), "out_dir": run, "target_options": {"tune_trials": 8}, "registry": registry,
              "latency": None, "samples": 2, "force": True}
    first = edgest.compile(model, "tvm", **kwargs)
    tuned = first.artifact.details["tuned"]
    assert first.status == "passed", first.error
    assert tuned["db"] == "tuning/" and tuned["tasks_tuned_now"] == tuned["tasks"] >= 1
    assert (run / "tuning" / "database_tuning_record.json").stat().st_size > 0
    again = edgest.compile(model, "tvm", **kwargs).artifact.details["tuned"]  # --force into the same folder
    assert again["tasks_tuned_now"] == 0 and again["tasks_from_db"] == tuned["tasks"]
    assert (run / "tuning" / "database_tuning_record.json").stat().st_size > 0


@toolchain
def test_aarch64_cross_compile_is_checked_under_qemu(registry, tmp_path):
    from edgest_tvm.emulated import emulation_unavailable_reason

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
    acc, lat = report.check("accuracy"), report.check("latency")
    assert report.status == "incomplete" and lat.status == "not_run"
    reason = emulation_unavailable_reason()
    if reason:
        assert acc.status == "not_run" and "make aarch64-sysroot" in acc.reason
        pytest.skip(f"qemu-aarch64 or the aarch64 sysroot missing ({reason}): the qemu-run check is not tested")
    # TVM's aarch64 runtime ran the aarch64 library under qemu-aarch64 and matched eager PyTorch
    assert acc.status == "passed", acc.reason
    assert acc.metrics["sqnr_db"] >= 40.0 and acc.metrics["samples"] == 2
    assert "emulated under qemu: latency meaningless" in lat.reason


def test_aarch64_library_without_sysroot_names_the_make_target(registry, tmp_path, monkeypatch):
    lib = tmp_path / "model.so"
    lib.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(11) + (0xB7).to_bytes(2, "little"))  # an aarch64 ELF header
    monkeypatch.setenv("EDGEST_AARCH64_SYSROOT", str(tmp_path / "no-sysroot"))
    target = registry.target("tvm")(tvm_target="aarch64")
    if platform.machine() != "x86_64":
        pytest.skip(f"qemu emulation is only wired for x86_64 hosts, this is {platform.machine()}")
    with pytest.raises(TargetUnavailable, match=r"(qemu-aarch64|no aarch64 sysroot).*make aarch64-sysroot"):
        target.load(lib, threads=1)


def test_staging_folder_maps_to_its_run_folder(tmp_path):
    from edgest_tvm.compiler import final_folder

    assert final_folder(tmp_path / ".run.partial-ab_12") == tmp_path / "run"
    assert final_folder(tmp_path / ".my.run.partial-x9") == tmp_path / "my.run"
    assert final_folder(tmp_path / "run") == tmp_path / "run"


@toolchain
def test_aarch64_without_cross_linker_is_unavailable(registry, monkeypatch):
    import edgest_tvm.compiler as compiler

    monkeypatch.setattr(compiler.shutil, "which", lambda name: None)
    with pytest.raises(TargetUnavailable, match="apt-get install g\\+\\+-aarch64-linux-gnu"):
        registry.target("tvm")(tvm_target="aarch64").ensure_available()
