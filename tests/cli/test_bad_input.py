"""The real CLI, in a subprocess, on bad input: one-line errors, exit code 2, nothing left on disk.

Plus one full successful compile of the tiny SqueezeTime model for ONNX.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from edgest.testing.stage_log import error_lines

MODEL = "squeezetime_tiny"  # input 1x3x8x64x64
TARGET = "eager"
MARKER = "PWNED"

# variables that would change which plugins load or make rich draw a spinner on stderr
_ENV_DROP = ("EDGEST_LOAD_PLUGINS", "EDGEST_DISABLE_PLUGIN_AUTOLOAD", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def edgest(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    return subprocess.run([sys.executable, "-m", "edgest", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def compile_args(*extra: str, out: str = "run", model: str = MODEL, target: str = TARGET) -> list[str]:
    return ["compile", "--model", model, "--target", target, "--out", out, *extra]


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str, code: int = 2) -> str:
    """Exit ``code``, no traceback, stderr exactly one ``edgest: error:`` line containing ``words``; returns it."""
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr}"
    line = lines[0]
    assert line.startswith("edgest: error: "), line
    for w in words:
        assert w in line, f"{w!r} not in {line!r}"
    assert proc.stdout == "", proc.stdout
    return line


def assert_nothing_written(tmp_path: Path, before: set[str]) -> None:
    """No output folder and no hidden ``.NAME.partial-*`` staging folder: the cwd holds what it held."""
    after = {p.name for p in tmp_path.iterdir()}
    assert after == before, f"left behind: {sorted(after - before)}"
    assert not list(tmp_path.rglob("*.partial-*"))
    assert not (tmp_path / "edgest-out").exists()


def listing(tmp_path: Path) -> set[str]:
    return {p.name for p in tmp_path.iterdir()}


# --- unknown names --------------------------------------------------------------------------------

def test_unknown_target(tmp_path: Path) -> None:
    proc = edgest(tmp_path, *compile_args(target="onx"))
    line = assert_one_line_error(proc, "unknown target 'onx'; available: ")
    available = re.search(r"available: ([^;]+)", line)
    assert available is not None
    names = [n.strip() for n in available.group(1).split(",")]
    assert {"eager", "onnx"} <= set(names)
    if set(names) == {"eager", "onnx"}:  # only the built-in plugins are installed
        assert "unknown target 'onx'; available: eager, onnx" in line
    assert "did you mean 'onnx'" in line
    assert_nothing_written(tmp_path, set())


def test_a_name_in_the_wrong_case_is_suggested_in_the_right_one(tmp_path: Path) -> None:
    proc = edgest(tmp_path, *compile_args("--precision", "INT8", target="ONNX"))
    assert_one_line_error(proc, "unknown target 'ONNX'", "did you mean 'onnx'?")
    proc = edgest(tmp_path, *compile_args("--precision", "INT8"))
    assert_one_line_error(proc, "unknown precision 'INT8'; available: ", "did you mean 'int8'?")
    assert_nothing_written(tmp_path, set())


def test_unknown_model(tmp_path: Path) -> None:
    proc = edgest(tmp_path, *compile_args(model="squeezetim"))
    line = assert_one_line_error(proc, "unknown model 'squeezetim'", "available:", MODEL)
    assert "did you mean" in line
    assert_nothing_written(tmp_path, set())


# --- input shapes ---------------------------------------------------------------------------------

def test_malformed_input_shape(tmp_path: Path) -> None:
    proc = edgest(tmp_path, *compile_args("--input-shape", "1x3xfoo"))
    assert_one_line_error(proc, "malformed input shape '1x3xfoo'", "1x3x16x224x224")
    assert_nothing_written(tmp_path, set())


def test_wrong_rank_input_shape(tmp_path: Path) -> None:
    proc = edgest(tmp_path, *compile_args("--input-shape", "1x3x64x64"))
    assert_one_line_error(proc, "input shape 1x3x64x64 has 4 dims", f"model '{MODEL}' takes 5", "1x3x8x64x64")
    assert_nothing_written(tmp_path, set())


def test_shape_the_model_cannot_run(tmp_path: Path) -> None:
    proc = edgest(tmp_path, *compile_args("--input-shape", "1x4x8x64x64"))
    assert_one_line_error(proc, f"model '{MODEL}' cannot run on input 1x4x8x64x64", "channels")
    assert_nothing_written(tmp_path, set())


# --- weights --------------------------------------------------------------------------------------

def test_weights_missing_file(tmp_path: Path) -> None:
    proc = edgest(tmp_path, *compile_args("--weights", "nope.pt"))
    assert_one_line_error(proc, "weights file 'nope.pt' does not exist")
    assert_nothing_written(tmp_path, set())


def test_weights_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "corrupt.pt").write_bytes(os.urandom(4096))
    before = listing(tmp_path)
    proc = edgest(tmp_path, *compile_args("--weights", "corrupt.pt"))
    assert_one_line_error(proc, "cannot read weights 'corrupt.pt'", "torch.save(model.state_dict(), path)")
    assert_nothing_written(tmp_path, before)


def test_weights_from_another_model(tmp_path: Path) -> None:
    import torch

    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "linear.pt")
    before = listing(tmp_path)
    proc = edgest(tmp_path, *compile_args("--weights", "linear.pt"))
    line = assert_one_line_error(proc, "weights 'linear.pt' do not match the model", "missing:", "unexpected: bias, weight")
    assert "more)" in line  # the long list of missing keys is cut short
    assert len(line) < 600
    assert_nothing_written(tmp_path, before)


class _Evil:
    """Unpickling this runs ``touch MARKER`` (in the cwd of whoever unpickles it)."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _write_malicious(path: Path, how: str) -> None:
    if how == "pickle":
        with open(path, "wb") as fh:
            pickle.dump({"weight": _Evil()}, fh)
    else:
        import torch

        torch.save({"weight": _Evil()}, path)


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_malicious_pickle_is_rejected_without_running_it(tmp_path: Path, how: str) -> None:
    _write_malicious(tmp_path / "evil.pt", how)
    before = listing(tmp_path)
    proc = edgest(tmp_path, *compile_args("--weights", "evil.pt"))
    assert not (tmp_path / MARKER).exists(), "unpickling the weights ran code"
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edgest: error: ")]
    assert len(errors) == 1 and "cannot read weights 'evil.pt'" in errors[0], proc.stderr
    assert_nothing_written(tmp_path, before)


def test_malicious_torch_save_error_is_one_line(tmp_path: Path) -> None:
    _write_malicious(tmp_path / "evil.pt", "torch.save")
    proc = edgest(tmp_path, *compile_args("--weights", "evil.pt"))
    assert_one_line_error(proc, "cannot read weights 'evil.pt'")


def test_malicious_plain_pickle_error_is_one_line(tmp_path: Path) -> None:
    _write_malicious(tmp_path / "evil.pt", "pickle")
    proc = edgest(tmp_path, *compile_args("--weights", "evil.pt"))
    assert_one_line_error(proc, "cannot read weights 'evil.pt'")


@pytest.mark.parametrize("kind", ["corrupt", "malicious"])
def test_unreadable_weights_message_names_the_problem(tmp_path: Path, kind: str) -> None:
    if kind == "corrupt":
        (tmp_path / "w.pt").write_bytes(os.urandom(4096))
    else:
        _write_malicious(tmp_path / "w.pt", "torch.save")
    proc = edgest(tmp_path, *compile_args("--weights", "w.pt"))
    line = [x for x in proc.stderr.splitlines() if x.startswith("edgest: error: ")][0]
    assert "cannot read weights 'w.pt'" in line
    assert "weights_only` set to `False`" not in line
    assert "Re-running" not in line


# --- output folder --------------------------------------------------------------------------------
# One sample keeps these fast should a check ever move after the eager run.
ONE = ("--samples", "1")


def test_out_under_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "somefile").write_text("not a folder\n")
    before = listing(tmp_path)
    proc = edgest(tmp_path, *compile_args(*ONE, out="somefile/run"))
    assert_one_line_error(proc, "cannot create output folder", "somefile/run", "is a file", "pass --out (out_dir=) a folder path")
    assert_nothing_written(tmp_path, before)
    assert (tmp_path / "somefile").read_text() == "not a folder\n"


def test_out_is_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "somefile").write_text("not a folder\n")
    before = listing(tmp_path)
    proc = edgest(tmp_path, *compile_args(*ONE, out="somefile"))
    assert_one_line_error(proc, "output path", "somefile' is a file")
    assert_nothing_written(tmp_path, before)
    assert (tmp_path / "somefile").read_text() == "not a folder\n"


def _read_only_folders_stop_us() -> bool:
    """False as root (CAP_DAC_OVERRIDE): there a chmod 0o500 folder does not stop writes."""
    with tempfile.TemporaryDirectory() as tmp:
        ro = Path(tmp) / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            (ro / "probe").touch()
        except PermissionError:
            return True
        finally:
            ro.chmod(0o700)
        return False


@pytest.mark.skipif(os.name != "posix" or not _read_only_folders_stop_us(),
                    reason="running as root: a chmod 0o500 folder does not stop root from writing into it")
def test_out_in_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        proc = edgest(tmp_path, *compile_args(*ONE, out="ro/run"))
        assert_one_line_error(proc, "cannot write output folder", "ro/run", "Permission denied")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)
    assert_nothing_written(tmp_path, {"ro"})


def test_existing_non_empty_out_without_force(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine\n")
    proc = edgest(tmp_path, *compile_args(*ONE, out="run"))
    line = assert_one_line_error(proc, "output folder", "already exists and is not empty", "edgest did not create it")
    assert "--force" not in line  # forcing would delete the user's file
    assert_nothing_written(tmp_path, {"run"})
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["keep.txt"]
    assert (tmp_path / "run" / "keep.txt").read_text() == "mine\n"


# --- the successful path --------------------------------------------------------------------------

def test_compile_onnx_json_success(tmp_path: Path) -> None:
    proc = edgest(tmp_path, *compile_args("--json", target="onnx"), timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "passed", report.get("error")
    assert report["model"]["name"] == MODEL and report["target"] == "onnx"
    run = tmp_path / "run"
    for name in ("report.json", "report.md", "model.onnx"):
        assert (run / name).is_file(), name
    assert report["artifact"]["path"] == "model.onnx"
    assert json.loads((run / "report.json").read_text())["status"] == "passed"
    assert listing(tmp_path) == {"run"}  # the staging folder was renamed into place

    checks = {c["kind"]: c for c in report["checks"]}
    acc = checks["accuracy"]
    assert acc["status"] == "passed"
    assert acc["metrics"]["samples"] >= 8
    assert acc["metrics"]["sqnr_db"] >= 40
    assert acc["metrics"]["top1_agreement"] == 1.0
    assert acc["limits"] == {"min_sqnr_db": 40.0, "min_top1_agreement": 1.0}

    lat = checks["latency"]
    assert lat["status"] == "passed"
    m = lat["metrics"]
    for key in ("p50_ms", "p90_ms", "cold_load_ms"):
        assert m[key] > 0, key
    assert m["p50_ms"] <= m["p90_ms"]
    assert m["threads"] == 1
    assert m["runs"] >= 30
    assert lat["limits"]["min_runs"] >= 30


@pytest.mark.parametrize("command", [["debug"], ["bundle", "--out", "bundle"]])
def test_a_bench_folder_given_for_one_run_is_named_with_a_cell_to_give(tmp_path: Path, command: list[str]) -> None:
    cell = tmp_path / "b" / "cells" / "m__onnx__fp32"  # debug and bundle said "not an edgest run folder" of it
    cell.mkdir(parents=True)
    (cell / "report.json").write_text("{}")
    (tmp_path / "b" / "bench.json").write_text("{}")
    before = {p.name for p in tmp_path.iterdir()}
    proc = edgest(tmp_path, command[0], "b", *command[1:])
    assert_one_line_error(proc, "'b' is a bench folder, not one run", "e.g. 'b/cells/m__onnx__fp32'")
    assert_nothing_written(tmp_path, before)
