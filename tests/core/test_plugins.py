"""Plugin manager: registration, duplicates, entry points, broken plugins, env controls."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import throwaway_plugin

import edgest
from edgest import hookspecs
from edgest.checks.latency import LatencyConfig
from edgest.errors import UnknownName
from edgest.plugins import new_plugin_manager
from edgest.testing.fake_dist import write_fake_distribution

FAST = LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)


@pytest.fixture
def pm():
    manager = new_plugin_manager(entry_points=False)
    manager.add(throwaway_plugin, "throwaway")
    yield manager
    manager.remove("throwaway")


def test_throwaway_target_compiles_end_to_end(pm, tmp_path):
    report = edgest.compile("tiny_mlp", "throwaway", out_dir=tmp_path / "run", registry=pm.registry, latency=FAST)
    assert report.status == "passed", report.error
    assert report.artifact.details == {"lowered_by": "throwaway"}
    assert (tmp_path / "run" / "throwaway.pt2").stat().st_size == report.artifact.size_bytes
    acc = report.check("accuracy")
    assert acc.metrics["samples"] == 8 and acc.metrics["max_abs"] == 0.0
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["status"] == "passed" and saved["schema_version"] == edgest.SCHEMA_VERSION


def test_pass_records_its_accuracy_delta(pm, tmp_path):
    report = edgest.compile("tiny_mlp", "throwaway", passes=[("scale-output", {"factor": 1.01})],
                            out_dir=tmp_path / "run", registry=pm.registry, latency=None)
    (record,) = report.passes
    assert record.name == "scale-output" and record.modified and record.summary == "scaled output by 1.01"
    # a 1% scale error is an SQNR of exactly 40 dB
    assert record.accuracy_delta["sqnr_db"] == pytest.approx(40.0, abs=1e-3)
    assert report.artifact.passes == ("scale-output",)


def test_precision_and_a_disagreeing_target_option_are_refused_on_any_target(pm, tmp_path):
    """A target without an option table too: the report must not say fp32 over an fp16 artifact."""
    with pytest.raises(edgest.BadInput, match="precision fp32 and target option precision=fp16 disagree"):
        edgest.compile("tiny_mlp", "throwaway", precision="fp32", target_options={"precision": "fp16"},
                       out_dir=tmp_path / "run", registry=pm.registry, latency=None)
    assert not (tmp_path / "run").exists()


def test_duplicate_name_names_both_plugins_and_skips_the_later(pm):
    dup = types.SimpleNamespace(register_targets=throwaway_plugin.register_targets)
    problem = pm.add(dup, "impostor")
    assert problem == ("target 'throwaway' is already registered by plugin 'throwaway'; "
                       "rename it, or disable one of the two plugins (EDGEST_LOAD_PLUGINS)")
    assert pm.load_errors == [f"edgest: plugin 'impostor' skipped: {problem}"]
    assert pm.registry.owners[("target", "throwaway")] == "throwaway" and not pm.has_plugin("impostor")
    assert pm.infos["impostor"].status == f"skipped: {problem}"


def test_unknown_names_list_the_alternatives(pm):
    with pytest.raises(UnknownName, match=r"^unknown target 'thrwaway'; available: eager, throwaway; did you mean 'throwaway'\?$"):
        pm.registry.target("thrwaway")
    with pytest.raises(UnknownName, match="unknown model 'nope'; available: tiny_mlp"):
        pm.registry.model("nope")


def test_in_repo_distributions_register_through_entry_points():
    manager = new_plugin_manager()
    reg = manager.registry
    assert reg.owners[("target", "onnx")] == "onnx"
    assert reg.owners[("model", "squeezetime")] == "models"
    assert manager.infos["onnx"].distribution == "edgest-onnx"
    assert manager.infos["models"].distribution == "edgest-models"
    assert reg.owners[("target", "eager")] == "edgest.targets.eager"


def _edgest(args: list[str], root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(root), **env}
    return subprocess.run([sys.executable, "-m", "edgest", *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_plugin_failing_at_import_is_named_and_skipped(tmp_path):
    write_fake_distribution(tmp_path, "broken", "raise ImportError('needs libfoo.so (apt install libfoo)')\n")
    proc = _edgest(["list", "targets", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "edgest: plugin 'broken' failed to load: ImportError: needs libfoo.so (apt install libfoo)"
    assert {t["name"] for t in json.loads(proc.stdout)["targets"]} >= {"eager", "onnx"}


def test_env_controls_which_entry_points_load(tmp_path):
    write_fake_distribution(tmp_path, "broken", "raise RuntimeError('boom')\n")
    only = _edgest(["list", "targets", "--json"], tmp_path, EDGEST_LOAD_PLUGINS="onnx")
    assert only.returncode == 0 and "broken" not in only.stderr
    assert {t["name"] for t in json.loads(only.stdout)["targets"]} == {"eager", "onnx"}
    none = _edgest(["list", "targets", "--json"], tmp_path, EDGEST_DISABLE_PLUGIN_AUTOLOAD="1")
    assert none.returncode == 0 and none.stderr == ""
    assert {t["name"] for t in json.loads(none.stdout)["targets"]} == {"eager"}


def test_every_hook_is_typed_and_documented():
    hooks = [f for n, f in vars(hookspecs).items() if n.startswith("register_")]
    assert {f.__name__ for f in hooks} == {"register_models", "register_passes", "register_targets", "register_commands"}
    for hook in hooks:
        assert inspect.getdoc(hook), f"{hook.__name__} has no docstring"
        params = inspect.signature(hook).parameters
        assert all(p.annotation is not inspect.Parameter.empty for p in params.values()), hook.__name__
