"""``--target-option [TARGET:]KEY=VALUE``: typed by the target's option table, routed to the right target."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from edgest.errors import BadInput
from edgest.target import Target
from edgest.target_options import parse_target_options


class _Base(Target):
    artifact_format = "bin"

    def lower(self, program: Any, example_inputs: Any, out_dir: Path) -> Any:
        raise NotImplementedError

    def load(self, path: Path, threads: int) -> Any:
        raise NotImplementedError


class Tabled(_Base):
    name = "tabled"
    option_table: ClassVar[dict[str, tuple[Any, Any]]] = {
        "trials": (int, 0), "scale": (float, 1.0), "fast": (bool, False), "db": (str, ""),
        "arch": (("host", "aarch64"), "host"), "bits": ((4, 8), 8),
    }


class Other(_Base):
    name = "other"
    option_table: ClassVar[dict[str, tuple[Any, Any]]] = {"trials": (int, 0), "mode": (str, "a")}


class SelfChecked(_Base):
    """Checks its own options without a table (as a third-party target may)."""

    name = "selfchecked"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)


class NoOptions(_Base):
    name = "nooptions"


def test_values_are_typed_by_the_option_table():
    items = ["trials=64", "scale=0.5", "fast=yes", "db=/tmp/a:b=c", "arch=aarch64", "bits=4"]
    assert parse_target_options(items, [Tabled]) == {
        "tabled": {"trials": 64, "scale": 0.5, "fast": True, "db": "/tmp/a:b=c", "arch": "aarch64", "bits": 4}}
    assert parse_target_options(["fast=off"], [Tabled])["tabled"] == {"fast": False}
    # a value outside the allowed tuple stays text: the target's constructor names the allowed values
    assert parse_target_options(["arch=riscv"], [Tabled])["tabled"] == {"arch": "riscv"}
    with pytest.raises(BadInput, match="tabled option arch='riscv' is not one of host, aarch64"):
        Tabled(**parse_target_options(["arch=riscv"], [Tabled])["tabled"])


@pytest.mark.parametrize(("item", "message"), [
    ("trials=many", "tabled option trials must be int, not 'many'"),
    ("scale=big", "tabled option scale must be float, not 'big'"),
    ("fast=maybe", "tabled option fast must be true or false, not 'maybe'"),
    ("trials", "malformed --target-option 'trials'; write KEY=VALUE or TARGET:KEY=VALUE"),
    ("=3", "malformed --target-option '=3'"),
    ("other:trials=3", "names target 'other', which is not being compiled"),
])
def test_bad_values_are_one_line_bad_input(item, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(")):
        parse_target_options([item], [Tabled])


def test_unknown_key_is_the_targets_own_error():
    opts = parse_target_options(["no_such=1"], [Tabled])["tabled"]
    with pytest.raises(BadInput, match="unknown tabled option 'no_such'; available: trials, scale, fast, db, arch, bits"):
        Tabled(**opts)


def test_targets_without_a_table():
    assert parse_target_options(["a=8", "b=true", "c=fp16"], [SelfChecked]) == {"selfchecked": {"a": 8, "b": True, "c": "fp16"}}
    with pytest.raises(BadInput, match=r"^target 'nooptions' takes no options \(got --target-option a=1\); remove that "
                                       r"--target-option$"):
        parse_target_options(["a=1"], [NoOptions])
    with pytest.raises(BadInput, match=r"takes no options \(got --target-option nooptions:a=1\); remove that "
                                       r"--target-option \(options: other: trials, mode\)$"):
        parse_target_options(["nooptions:a=1"], [NoOptions, Other])


def test_several_targets_route_by_scope_or_by_table():
    out = parse_target_options(["trials=32", "tabled:arch=aarch64", "mode=b"], [Tabled, Other, NoOptions])
    assert out == {"tabled": {"trials": 32, "arch": "aarch64"}, "other": {"trials": 32, "mode": "b"}, "nooptions": {}}
    with pytest.raises(BadInput, match="no target among tabled, other has an option 'nope'; .* \\(options: tabled: trials, "
                                       "scale, fast, db, arch, bits; other: trials, mode\\)$"):
        parse_target_options(["nope=1"], [Tabled, Other])


def _edgest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("EDGEST_LOAD_PLUGINS", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "edgest", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.mark.parametrize(("target", "item", "message"), [
    ("eager", "threads=2", ("edgest: error: target 'eager' takes no options (got --target-option threads=2); remove "
                            "that --target-option")),
    ("tvm", "tune_trials=lots", "edgest: error: tvm option tune_trials must be int, not 'lots'"),
    ("tvm", "no_such=1", "edgest: error: unknown tvm option 'no_such'; available: tune_trials, tuning_db, tvm_target"),
])
def test_cli_compile_rejects_bad_target_options_in_one_line(tmp_path, target, item, message):
    pytest.importorskip(f"edgest_{target}" if target != "eager" else "edgest")
    proc = _edgest(tmp_path, "compile", "--model", "squeezetime_tiny", "--target", target, "--out", "run",
                   "--target-option", item)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith(message), proc.stderr
    assert not (tmp_path / "run").exists()


def test_cli_bench_rejects_an_option_no_target_has(tmp_path):
    proc = _edgest(tmp_path, "bench", "--models", "squeezetime_tiny", "--targets", "eager,onnx", "--out", "b",
                   "--target-option", "tune_trials=8")
    assert proc.returncode == 2, proc.stderr
    assert "edgest: error: no target among eager, onnx has an option 'tune_trials'" in proc.stderr
