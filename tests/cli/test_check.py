"""``edgest check``: the op-coverage pre-flight from the command line (JSON for scripts, a table for people)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _edgest(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgest", *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                          check=False, env=env)


def _check_document(doc: dict, targets: set[str]) -> None:
    """The JSON's shape: the captured ops, then per target a status, a note, a summary and per-op verdicts."""
    assert set(doc) >= {"model", "input_shape", "precision", "ops", "targets", "seconds"}
    assert doc["ops"] and all(set(o) == {"op", "count", "where"} for o in doc["ops"])
    assert set(doc["targets"]) == targets
    nodes = sum(o["count"] for o in doc["ops"])
    for name, t in doc["targets"].items():
        assert set(t) == {"target", "status", "note", "summary", "ops"} and t["target"] == name
        assert t["status"] in ("known", "not known", "unavailable", "failed", "skipped")
        if t["status"] == "known":
            assert sum(t["summary"].values()) == nodes, name  # every captured node judged once
            assert all(o["verdict"] in ("native", "delegated", "fallback", "unsupported") for o in t["ops"])
        else:
            assert not t["ops"] and t["note"]


def test_check_json_on_a_user_model_file(tmp_path, conv_cumsum_file):
    proc = _edgest("check", "--model", "net.py:ConvCumsum", "--input-shape", "1x3x8x8", "--targets", "eager", "--json",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    _check_document(doc, {"eager"})
    assert doc["input_shape"] == [1, 3, 8, 8]
    cumsum = next(o for o in doc["ops"] if o["op"] == "aten.cumsum.default")
    assert cumsum["where"] == ["net.py:11"]
    assert doc["targets"]["eager"]["status"] == "known"
    assert {p.name for p in tmp_path.iterdir()} <= {"net.py", "__pycache__"}, "check writes nothing"


def test_check_table_shows_ops_by_targets_and_what_is_not_known(tmp_path, conv_cumsum_file):
    proc = _edgest("check", "--model", "net.py:ConvCumsum", "--input-shape", "1x3x8x8", "--targets", "eager,example-pt2",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.count("│") > 2}
    assert {"conv2d", "relu", "cumsum"} <= set(rows)
    assert "native" in rows["cumsum"]
    assert "example-pt2: not known: target 'example-pt2' does not report op coverage" in proc.stdout


def test_a_second_check_says_which_answers_it_kept_and_no_cache_asks_again(tmp_path, conv_cumsum_file):
    import os

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    args = ("check", "--model", "net.py:ConvCumsum", "--input-shape", "1x3x8x8", "--targets", "eager")
    first, second, third = (_edgest(*args, *extra, cwd=tmp_path, env=env) for extra in ((), (), ("--no-cache",)))
    assert [p.returncode for p in (first, second, third)] == [0, 0, 0], second.stderr
    kept = "(kept from an earlier check: --no-cache asks again)"
    assert kept not in first.stdout and kept in second.stdout and kept not in third.stdout
    assert second.stdout.replace(" " + kept, "") == first.stdout  # the same matrix and notes
    assert len(list((tmp_path / "cache" / "edgest" / "coverage").glob("*.json"))) == 1


def test_check_refuses_an_unknown_target_in_one_line():
    proc = _edgest("check", "--model", "squeezetime_tiny", "--targets", "eager,nope")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "unknown target 'nope'" in proc.stderr



def test_check_refuses_a_precision_no_named_target_has_in_one_line():
    proc = _edgest("check", "--model", "squeezetime_tiny", "--targets", "eager", "--precision", "int8")
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout  # was exit 0 and one "skipped" column
    assert proc.stderr.strip() == ("edgest: error: no target named has precision int8 (eager has fp32); name a target "
                                   "that has it, or leave out --precision (each target's default)")


@pytest.mark.slow  # every installed toolchain is imported: tens of seconds on 2 cores
def test_check_all_targets_json_on_the_tiny_zoo_model():
    proc = _edgest("check", "--model", "squeezetime_tiny", "--targets", "all", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    from edgest.plugins import get_registry

    _check_document(doc, set(get_registry().targets))
    assert doc["model"] == "squeezetime_tiny" and doc["input_shape"] == [1, 3, 8, 64, 64]
    assert doc["targets"]["eager"]["summary"] == {"native": sum(o["count"] for o in doc["ops"])}
