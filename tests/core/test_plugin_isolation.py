"""A plugin with an invalid registration is skipped whole and named once; everything else keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import throwaway_plugin

import edgest
from edgest import hookimpl
from edgest.plugins import new_plugin_manager
from edgest.testing.fake_dist import write_fake_distribution


class _NoFormat(throwaway_plugin.PickleTarget):
    name = "no-format"
    artifact_format = None


class _NoLoad(edgest.Target):
    name = "no-load"
    artifact_format = "pt2"

    def lower(self, program, example_inputs, out_dir):
        raise NotImplementedError


class _BadTable(throwaway_plugin.ScaleOutputPass):
    name = "bad-table"
    option_table = {"factor": float}


class _BadPrecision(throwaway_plugin.PickleTarget):
    name = "bad-precision"
    precisions = ("fp16",)


def _targets(*classes):
    @hookimpl
    def register_targets(register):
        for cls in classes:
            register(cls)
    return register_targets


def _model(spec_kwargs):
    @hookimpl
    def register_models(register):
        register(edgest.ModelEntry(edgest.ModelSpec(**spec_kwargs), "throwaway_plugin:tiny_mlp"))
    return register_models


def _raises():
    @hookimpl
    def register_passes(register):
        register(throwaway_plugin.ScaleOutputPass)
        raise RuntimeError("cannot find libfoo")
    return register_passes


def _not_a_hook():
    @hookimpl
    def register_target(register):  # misspelt: the hook is register_targets
        register(throwaway_plugin.PickleTarget)
    return register_target


@hookimpl
def _register_bad_table(register):
    register(_BadTable)


def _unmarked_targets(register):  # a hook function without @edgest.hookimpl
    register(throwaway_plugin.PickleTarget)


def _wrong_args():
    @hookimpl
    def register_targets(reg, extra):
        reg(throwaway_plugin.PickleTarget)
    return register_targets


_SPEC = {"name": "tiny_ok", "family": "test", "input": edgest.InputSpec((2, 8), layout="B,C"), "num_classes": 4}

#: (plugin hooks besides a valid model 'tiny_ok', the problem it must be skipped with)
CASES = {
    "bad target name": ({"register_targets": _targets(type("Caps", (throwaway_plugin.PickleTarget,), {"name": "Caps"}))},
                        "target class Caps has no valid name (got 'Caps'); set the class attribute name = "),
    "not a Target": ({"register_targets": _targets(object)},
                     "registered <class 'object'> as a target, but it is not a subclass of edgest.Target"),
    "missing artifact_format": ({"register_targets": _targets(_NoFormat)},
                                "target 'no-format' (_NoFormat) has no valid artifact_format (got None)"),
    "abstract load": ({"register_targets": _targets(_NoLoad)}, "target 'no-load' (_NoLoad) does not implement load"),
    "default precision not offered": ({"register_targets": _targets(_BadPrecision)},
                                      "target 'bad-precision' (_BadPrecision): default_precision 'fp32' is not among "
                                      "precisions ('fp16',)"),
    "bad option table": ({"register_passes": _register_bad_table},
                         "pass 'bad-table': option_table['factor'] must be a pair"),
    "bad model spec": ({"register_models": _model({**_SPEC, "name": "tiny_bad", "num_classes": "4"})},
                       "model 'tiny_bad': num_classes must be an int >= 0"),
    "bad model shape": ({"register_models": _model({**_SPEC, "name": "tiny_bad", "input": edgest.InputSpec((0, 8))})},
                        "model 'tiny_bad': input must be an edgest.InputSpec with a tuple of positive ints"),
    "hook raises": ({"register_passes": _raises()}, "its register_passes hook raised RuntimeError: cannot find libfoo"),
    "unmarked hook": ({"register_targets": _unmarked_targets},
                      "register_targets is not decorated with @edgest.hookimpl, so edgest would never call it; "
                      "add @edgest.hookimpl above each hook function"),
    "misspelt hook": ({"register_target": _not_a_hook()},
                      "register_target is marked @edgest.hookimpl but is not an edgest hook"),
    "hook signature": ({"register_targets": _wrong_args()}, "pluggy refused its hooks"),
    "same name twice": ({"register_targets": _targets(throwaway_plugin.PickleTarget, throwaway_plugin.PickleTarget)},
                        "it registers target 'throwaway' twice"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_plugin_is_skipped_whole_and_named(case):
    hooks, problem = CASES[case]
    pm = new_plugin_manager(entry_points=False)
    plugin = types.SimpleNamespace(register_models=_model(_SPEC), **{k: v for k, v in hooks.items() if k != "register_models"})
    if "register_models" in hooks:  # its valid model comes from a second hook call in the same plugin
        good, bad = _model(_SPEC), hooks["register_models"]

        @hookimpl
        def register_models(register):
            good(register)
            bad(register)
        plugin.register_models = register_models
    got = pm.add(plugin, "bad")
    assert got is not None and got.startswith(problem), got
    assert pm.load_errors == [f"edgest: plugin 'bad' skipped: {got}"]
    assert "\n" not in got
    reg = pm.registry
    assert "tiny_ok" not in reg.models and "throwaway" not in reg.targets  # nothing of the plugin, not even its valid parts
    assert not any(owner == "bad" for owner in reg.owners.values()) and not pm.has_plugin("bad")
    assert set(reg.targets) == {"eager"} and {"quantize", "attention-to-conv"} <= set(reg.passes)
    assert pm.infos["bad"].status == f"skipped: {got}"
    # the next plugin still loads
    assert pm.add(throwaway_plugin, "throwaway") is None and "throwaway" in pm.registry.targets


def test_valid_plugin_loads_and_records_its_status():
    pm = new_plugin_manager(entry_points=False)
    assert pm.add(throwaway_plugin, "throwaway") is None
    assert pm.load_errors == [] and pm.infos["throwaway"].status == "loaded"
    assert pm.registry.owners[("pass", "scale-output")] == "throwaway"
    pm.remove("throwaway")
    assert "throwaway" not in pm.registry.targets and "throwaway" not in pm.infos


def test_a_plugin_with_no_hooks_is_named():
    pm = new_plugin_manager(entry_points=False)
    got = pm.add(types.SimpleNamespace(helper=lambda: None), "empty")
    assert got.startswith("it implements no edgest hook (register_models, register_passes, register_targets, register_commands)")


# ---- the CLI with broken third-party distributions installed --------------------------------------------

_BROKEN = {
    "badname": """
        import edgest
        from throwaway_plugin import PickleTarget
        class T(PickleTarget):
            name = "Bad Name"
        @edgest.hookimpl
        def register_targets(register):
            register(T)
    """,
    "dupe": """
        import edgest
        from edgest.targets.eager import EagerTarget
        class T(EagerTarget):
            pass
        @edgest.hookimpl
        def register_targets(register):
            register(T)
    """,
    "nomark": """
        from throwaway_plugin import PickleTarget
        def register_targets(register):
            register(PickleTarget)
    """,
    "raiser": """
        import edgest
        @edgest.hookimpl
        def register_models(register):
            raise KeyError("config")
    """,
    "noimport": "import no_such_toolchain_xyz\n",
}
_EXPECTED = {
    "badname": "edgest: plugin 'badname' skipped: target class T has no valid name (got 'Bad Name')",
    "dupe": "edgest: plugin 'dupe' skipped: target 'eager' is already registered by plugin 'edgest.targets.eager'",
    "nomark": "edgest: plugin 'nomark' skipped: register_targets is not decorated with @edgest.hookimpl",
    "raiser": "edgest: plugin 'raiser' skipped: its register_models hook raised KeyError: 'config'",
    "noimport": "edgest: plugin 'noimport' failed to load: ModuleNotFoundError: No module named 'no_such_toolchain_xyz'",
}


@pytest.fixture(scope="module")
def broken_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("broken")
    for name, source in _BROKEN.items():
        write_fake_distribution(root, name, textwrap.dedent(source))
    (root / "tinynet.py").write_text("import torch\nclass Net(torch.nn.Sequential):\n"
                                     "    def __init__(self):\n        super().__init__(torch.nn.Linear(8, 4))\n")
    return root


def _edgest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tests_core = str(Path(__file__).resolve().parent)  # throwaway_plugin
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), tests_core]), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "edgest", *args], capture_output=True, text=True, env=env,
                          cwd=root, timeout=300)


def _assert_named_once(stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.startswith("edgest: plugin ")]
    assert len(lines) == len(_EXPECTED), stderr
    for name, start in _EXPECTED.items():
        assert sum(line.startswith(start) for line in lines) == 1, (name, stderr)


def test_list_shows_each_broken_plugin_once_with_its_status(broken_root):
    proc = _edgest(broken_root, "list", "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    _assert_named_once(proc.stderr)
    rows = {r["name"]: r for r in json.loads(proc.stdout)["plugins"]}
    for name in _EXPECTED:
        assert f"edgest: plugin '{name}' {rows[name]['status']}" in proc.stderr.splitlines()
        assert rows[name]["registers"] == "-"
    assert rows["onnx"]["status"] == "loaded" and rows["models"]["status"] == "loaded"
    # (``edgest list`` of models also measures every zoo model's MACs: slow, and beside the point here)
    listed = _edgest(broken_root, "list", "targets", "--json")
    assert listed.returncode == 0, listed.stderr
    _assert_named_once(listed.stderr)
    assert {"eager", "onnx"} <= {t["name"] for t in json.loads(listed.stdout)["targets"]}


def test_compile_works_beside_broken_plugins(broken_root):
    run = broken_root / "run"
    proc = _edgest(broken_root, "compile", "--model", "tinynet.py:Net", "--input-shape", "2x8", "--target", "eager",
                   "--out", str(run), "--samples", "2")
    assert proc.returncode == 0, proc.stderr
    _assert_named_once(proc.stderr)
    assert json.loads((run / "report.json").read_text())["status"] == "passed"


def test_bench_works_beside_broken_plugins(broken_root):
    bench = broken_root / "bench"
    proc = _edgest(broken_root, "bench", "--models", "lmuformer_tiny", "--targets", "eager", "--out", str(bench), "--json")
    assert proc.returncode == 0, proc.stderr
    _assert_named_once(proc.stderr)
    (cell,) = json.loads((bench / "bench.json").read_text())["cells"]
    assert cell["status"] == "passed"
