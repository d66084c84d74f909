"""``edgest.coverage_cache``: an answer is reused only for the same program, target, options and code."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from edgest import coverage_cache, hookimpl
from edgest.coverage import Coverage, judged
from edgest.plugins import new_plugin_manager
from edgest.preflight import cached_ask, capture_for_check, check

sys.path.insert(0, str(Path(__file__).parent))
import throwaway_plugin


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(torch.relu(self.conv(x)), 2)


class CountingTarget(throwaway_plugin.PickleTarget):
    """Counts how often it is asked; cumsum falls back, the rest is native."""

    name = "counting"
    asked = 0

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        type(self).asked += 1

        def judge(node: torch.fx.Node) -> tuple[str, str] | None:
            return ("fallback", "no cumsum kernel") if "cumsum" in str(node.target) else ("native", "")

        return judged(self.name, program, program.graph, judge, "counting toolchain")


class FlakyTarget(throwaway_plugin.PickleTarget):
    name = "flaky"
    asked = 0

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        type(self).asked += 1
        raise RuntimeError("toolchain crashed")


@hookimpl
def register_targets(register):
    register(CountingTarget)
    register(FlakyTarget)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    CountingTarget.asked = FlakyTarget.asked = 0
    pm = new_plugin_manager(entry_points=False)
    pm.add(throwaway_plugin, "throwaway")
    pm.add(SimpleNamespace(register_targets=register_targets), "cache-test")
    return pm.registry


def _check(registry, shape=(1, 3, 8, 8), **kw):
    return check(Net(), ["counting", "flaky"], input_shape=shape, registry=registry, **kw)


def test_a_second_check_of_the_same_program_reuses_the_answer_and_asks_nothing(registry, tmp_path):
    first = _check(registry)
    second = _check(registry)
    assert CountingTarget.asked == 1 and first.cached == () and second.cached == ("counting",)
    assert second.coverage["counting"] == first.coverage["counting"]
    assert second.coverage["counting"].verdicts("aten.cumsum") == {"fallback": 1}
    assert "counting" not in second.seconds and second.to_dict()["cached"] == ["counting"]
    assert len(list((tmp_path / "cache" / "edgest" / "coverage").glob("*.json"))) == 1


def test_a_failed_answer_is_not_kept(registry):
    _check(registry)
    again = _check(registry)
    assert FlakyTarget.asked == 2 and again.coverage["flaky"].status == "failed" and "flaky" not in again.cached


def test_another_shape_weights_or_no_cache_asks_again(registry):
    _check(registry)
    _check(registry, shape=(1, 3, 9, 9))
    assert CountingTarget.asked == 2
    _check(registry, use_cache=False)
    assert CountingTarget.asked == 3
    torch.manual_seed(1)
    other = Net()
    with torch.no_grad():
        other.conv.weight.add_(1.0)
    program = capture_for_check(Net(), (1, 3, 8, 8), registry=registry)[1]
    changed = capture_for_check(other, (1, 3, 8, 8), registry=registry)[1]
    assert coverage_cache.program_fingerprint(program) == coverage_cache.program_fingerprint(
        capture_for_check(Net(), (1, 3, 8, 8), registry=registry)[1])
    assert coverage_cache.program_fingerprint(program) != coverage_cache.program_fingerprint(changed)


def test_target_options_and_precision_are_part_of_the_key(registry):
    fp = "0" * 40
    assert coverage_cache.cache_key(CountingTarget(), fp, None) != coverage_cache.cache_key(CountingTarget(threads=2), fp, None)
    assert coverage_cache.cache_key(CountingTarget(), fp, None) != coverage_cache.cache_key(CountingTarget(), fp, "fp16")
    assert coverage_cache.cache_key(CountingTarget(), fp, None) == coverage_cache.cache_key(CountingTarget(), fp, None)


def test_a_damaged_cache_file_is_asked_again_and_replaced(registry, tmp_path):
    _check(registry)
    (kept,) = (tmp_path / "cache" / "edgest" / "coverage").glob("*.json")
    kept.write_text('{"target": "counting", "ops": [{"op": 3}]')
    again = _check(registry)
    assert CountingTarget.asked == 2 and again.cached == ()
    assert json.loads(kept.read_text())["target"] == "counting"


def test_a_cache_folder_that_cannot_be_written_only_costs_time(registry, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert _check(registry).coverage["counting"].status == "known"
    assert _check(registry).cached == () and CountingTarget.asked == 2 and blocker.read_text() == "x"


def test_compile_coverage_reuses_what_check_kept(registry):
    _check(registry)
    program = capture_for_check(Net(), (1, 3, 8, 8), registry=registry)[1]
    answer = cached_ask(CountingTarget(), program, None)
    assert CountingTarget.asked == 1 and answer.verdicts("aten.cumsum") == {"fallback": 1}


def test_how_edgest_samples_the_graph_is_part_of_the_key(registry, monkeypatch):
    from edgest import coverage

    fp = "0" * 40
    sampled = coverage_cache.cache_key(CountingTarget(), fp, None)
    monkeypatch.setattr(coverage, "SAMPLE_OPS", False)
    assert coverage_cache.cache_key(CountingTarget(), fp, None) != sampled


@pytest.mark.parametrize("change", [{"verdict": "teleported"}, {"count": -1}, {"count": "3"}, {"where": [1]}])
def test_a_cache_file_changed_by_hand_is_asked_again(registry, tmp_path, change):
    _check(registry)
    (kept,) = (tmp_path / "cache" / "edgest" / "coverage").glob("*.json")
    data = json.loads(kept.read_text())
    data["ops"][0].update(change)
    kept.write_text(json.dumps(data))
    again = _check(registry)
    assert CountingTarget.asked == 2 and again.cached == () and again.coverage["counting"].status == "known"


def test_only_the_most_recently_used_answers_are_kept(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(coverage_cache, "MAX_ENTRIES", 2)
    answer = Coverage("t", (), "note")
    for i, key in enumerate(("a", "b")):
        coverage_cache.store(key, answer)
        os.utime(tmp_path / "cache" / "edgest" / "coverage" / f"{key}.json", (1000 + i, 1000 + i))
    assert coverage_cache.load("a") == answer  # read: now the most recently used
    coverage_cache.store("c", answer)
    assert sorted(p.stem for p in (tmp_path / "cache" / "edgest" / "coverage").glob("*.json")) == ["a", "c"]
    assert coverage_cache.load("b") is None


def test_a_relative_xdg_cache_home_is_ignored(tmp_path, monkeypatch):
    """The XDG spec: a relative path is invalid; edgest would otherwise make a cache folder wherever it was started."""
    from edgest.inventory import cache_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relcache")
    assert cache_dir() == tmp_path / "home" / ".cache" / "edgest"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "abs"))
    assert cache_dir() == tmp_path / "abs" / "edgest"
