"""``edgest debug``: probes found in graphs, the culprit rule, and planted faults named through a run folder.

The planted faults and the toolchain-free target come from :mod:`edgest.testing.faults`; the
ONNX and OpenVINO tests (tests/targets/test_debug_onnx.py, plugins/edgest-openvino/tests/test_debug.py)
run the same faults through real runtimes.
"""

from __future__ import annotations

import json

import pytest
import torch

import edgest
from edgest.cli import main
from edgest.debug import GraphNode, ModuleDiff, debug_run, module_exits
from edgest.debug.eager import module_outputs
from edgest.debug.localize import verdict
from edgest.debug.probes import program_probes
from edgest.errors import Unsupported
from edgest.plugins import new_plugin_manager
from edgest.testing import faults


@pytest.fixture(scope="module")
def pm():
    """Only the built-ins and the planted faults: no toolchain plugin can change these tests."""
    pm = new_plugin_manager(entry_points=False)
    pm.add(faults, "faults")
    return pm


@pytest.fixture(scope="module")
def registry(pm):
    return pm.registry


def _compile(registry, out, passes=(), model="debug_net"):
    return edgest.compile(model, "debug-pt2", passes=list(passes), out_dir=out, samples=2, latency=None, registry=registry)


def test_module_exits_take_the_last_value_read_outside_the_module() -> None:
    nodes = [GraphNode("c1", "b.conv", ("x",)), GraphNode("r", "b.act", ("c1",)), GraphNode("add", "b", ("r", "x")),
             GraphNode("fc", "head", ("add",))]
    assert module_exits(nodes, ["fc"]) == {"b.conv": "c1", "b.act": "r", "b": "add", "head": "fc"}
    # 'blocks.01' is not inside 'blocks.0'
    assert module_exits([GraphNode("a", "blocks.0", ()), GraphNode("b", "blocks.01", ("a",))], ["b"]) == {
        "blocks": "b", "blocks.0": "a", "blocks.01": "b"}


def test_probes_follow_graph_order_inner_module_first() -> None:
    net = faults.debug_net()
    x = torch.randn(1, 3, 16, 16)
    eager = module_outputs(net, [[x.numpy()]])
    program = torch.export.export(net, (x,))
    probes = program_probes(program, {k: v[0].shape for k, v in eager.items()})
    assert [p.module for p in probes] == ["stem", "blocks.0.conv", "blocks.0.act", "blocks.0", "blocks.1.conv",
                                          "blocks.1.act", "blocks.1", "blocks", "pool", "fc"]
    assert probes[1].kind == "Conv2d" and probes[1].shape == (1, 8, 16, 16)


def _diff(module: str, sqnr: float, reads: tuple[str, ...] = ()) -> ModuleDiff:
    return ModuleDiff(module, "Conv2d", module, (1,), sqnr, 0.0, 1.0, 0.0, reads)


def test_the_culprit_is_the_first_module_below_the_limit() -> None:
    mods = [_diff("a", 60), _diff("b", 12, ("a",)), _diff("c", 5, ("b",))]
    culprit, why, _ = verdict(mods, 40.0)
    assert culprit == "b" and "first module below the 40 dB limit" in why
    culprit, why, _ = verdict([_diff("a", 60), _diff("b", 55, ("a",))], 40.0)
    assert culprit is None and "within the 40 dB limit" in why


def test_a_scaled_weight_is_named_from_the_run_folder(registry, tmp_path) -> None:
    report = _compile(registry, tmp_path / "run", [("scale-weight", {"module": "blocks.1.conv", "factor": 1.5})])
    assert report.status == "failed"  # the accuracy check sees the fault; debug says where it is
    result = debug_run(tmp_path / "run", registry=registry)
    assert result.culprit == "blocks.1.conv"
    assert result.module("blocks.0").sqnr_db >= 120 and result.module("blocks.1.conv").sqnr_db < 20
    doc = json.loads((tmp_path / "run" / "debug.json").read_text())
    assert doc["culprit"] == "blocks.1.conv" and len(doc["modules"]) == 10
    assert "<svg" in (tmp_path / "run" / "debug-sqnr.svg").read_text()
    assert "Culprit: `blocks.1.conv`" in (tmp_path / "run" / "debug.md").read_text()


def test_a_clean_run_has_no_culprit(registry, tmp_path) -> None:
    _compile(registry, tmp_path / "run")
    result = debug_run(tmp_path / "run", registry=registry, write=False)
    assert result.culprit is None and min(m.sqnr_db for m in result.modules) >= 120
    assert not (tmp_path / "run" / "debug.json").exists()


def test_a_target_without_intermediates_says_so(tmp_path) -> None:
    pm = new_plugin_manager(entry_points=False)
    pm.add(faults, "faults")
    edgest.compile("debug_net", "eager", out_dir=tmp_path / "run", samples=1, latency=None, registry=pm.registry)
    with pytest.raises(Unsupported, match="per-layer debug not supported by target 'eager'.*debug-pt2"):
        debug_run(tmp_path / "run", registry=pm.registry)


def test_a_user_model_run_needs_the_model_again(registry, tmp_path, capsys) -> None:
    edgest.compile(faults.debug_net(), "debug-pt2", input_shape=(1, 3, 16, 16), out_dir=tmp_path / "run", samples=1,
                   latency=None, registry=registry)
    with pytest.raises(edgest.BadInput, match="pass it again with --model"):
        debug_run(tmp_path / "run", registry=registry)
    assert debug_run(tmp_path / "run", model=faults.debug_net(), registry=registry, write=False).culprit is None


def test_a_model_other_than_the_runs_is_refused(registry, tmp_path) -> None:
    _compile(registry, tmp_path / "zoo")  # a registered model: --model would have compared another one, and "passed"
    with pytest.raises(edgest.BadInput, match="compiled the registered model 'debug_net'.*leave it out"):
        debug_run(tmp_path / "zoo", model=faults.debug_net(), registry=registry, write=False)
    edgest.compile(faults.debug_net(), "debug-pt2", input_shape=(1, 3, 16, 16), out_dir=tmp_path / "user", samples=1,
                   latency=None, registry=registry)
    with pytest.raises(edgest.BadInput, match="--model builds 'sequential', but run '.*user' compiled 'debugnet'"):
        debug_run(tmp_path / "user", model=torch.nn.Sequential(faults.debug_net()), registry=registry, write=False)
    assert not (tmp_path / "user" / "debug.json").exists() and not (tmp_path / "zoo" / "debug.json").exists()


def test_cli_debug_prints_the_culprit(pm, registry, tmp_path, capsys, monkeypatch) -> None:
    _compile(registry, tmp_path / "run", [("scale-weight", {"module": "stem", "factor": 2.0})])
    monkeypatch.setattr("edgest.plugins._PM", pm)
    with pytest.raises(SystemExit) as exit_:
        main(["debug", str(tmp_path / "run"), "--json"])
    assert exit_.value.code == 0
    assert json.loads(capsys.readouterr().out)["culprit"] == "stem"



def test_a_compile_whose_accuracy_fails_names_the_module_at_once(pm, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("edgest.plugins._PM", pm)
    monkeypatch.setattr("edgest.interrupts.install", lambda: None)
    args = ["compile", "--model", "debug_net", "--target", "debug-pt2", "--samples", "2", "--quiet",
            "--pass", "scale-weight:module=blocks.1.conv,factor=1.5"]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "debug: error starts at blocks.1.conv" in err, err
    assert json.loads((tmp_path / "run" / "debug.json").read_text())["culprit"] == "blocks.1.conv"
    with pytest.raises(SystemExit):  # --no-debug: the failing compile alone
        main([*args, "--out", str(tmp_path / "quiet"), "--no-debug"])
    assert "debug:" not in capsys.readouterr().err and not (tmp_path / "quiet" / "debug.json").exists()
