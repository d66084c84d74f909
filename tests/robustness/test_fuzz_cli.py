"""Property tests over the CLI's argument space: whatever a user types, edgest answers in one line.

Random option values and strings for compile, bench, list, bundle, report merge and train, run
in-process through :func:`edgest.cli.main` in a scratch folder holding a user's files. Every
run must: raise nothing (no traceback), exit 0, 1 or 2 (or reach the point where the real work
would start), print at most one ``edgest: error:`` line (exactly one on exit 2, and no click
``Usage:``), and leave every file that was there, in and beside the scratch folder, as it was.

Only cheap paths run: once validation passes, the compile's stages (``edgest.pipeline.run``)
and training's model build raise :class:`Reached` instead of working.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgest.cli import main

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Reached(BaseException):
    """Validation passed: the real work would start here (a BaseException, so no ``except Exception`` hides it)."""


def _reached(*args: object, **kwargs: object) -> None:
    raise Reached


@pytest.fixture(autouse=True)
def _no_real_work(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import edgest.pipeline
    from edgest.model import ModelEntry

    monkeypatch.setattr(edgest.pipeline, "run", _reached)
    monkeypatch.setattr(ModelEntry, "build", _reached)  # edgest train: stop before training
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, h in handlers.items():  # main() installs edgest's own; the test process keeps pytest's
        signal.signal(s, h)


# --- a user's folder ------------------------------------------------------------------------------

NET = "import torch\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n"


def _workspace(root: Path) -> Path:
    """A scratch cwd with a user's files, and a sibling folder edgest is never told about."""
    ws = Path(tempfile.mkdtemp(dir=root, prefix="ws-"))
    (ws / "keep.txt").write_text("mine\n")
    (ws / "docs").mkdir()
    (ws / "docs" / "report.md").write_text("# my notes\n")
    (ws / "net.py").write_text(NET)
    (ws / "junk.pt").write_bytes(b"\x80\x04not really a pickle")
    (ws / "calib").mkdir()
    np.save(ws / "calib" / "a.npy", np.ones((1, 4), np.float32))
    (ws / "device.json").write_text('{"kind": "edgest-device-report", "model": 1}')
    outside = root / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "precious.txt").write_text("do not touch\n")
    return ws


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def run_cli(root: Path, argv: list[str]) -> tuple[int | str, str, str]:
    """Run ``edgest argv`` in a fresh workspace under ``root``; check the properties; return (code, stdout, stderr)."""
    ws = _workspace(root)
    before = _snapshot(root)
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    code: int | str
    try:
        os.chdir(ws)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Reached:
                code = "reached"
    finally:
        os.chdir(cwd)
    stderr = err.getvalue()
    errors = [line for line in stderr.splitlines() if line.startswith("edgest: error:")]
    assert "Traceback" not in stderr + out.getvalue(), (argv, stderr)
    assert code in (0, 1, 2, "reached"), (argv, code, stderr)
    assert len(errors) <= 1, (argv, stderr)
    assert "Usage:" not in stderr and not any(line.startswith("Error:") for line in stderr.splitlines()), (argv, stderr)
    if code == 2:
        assert len(errors) == 1, (argv, stderr)
    if code == "reached":
        assert not errors, (argv, stderr)
    after = _snapshot(root)
    changed = [k for k, v in before.items() if after.get(k) != v]
    assert not changed, (argv, f"changed or removed: {changed}")
    assert not [k for k in after if k not in before and not k.startswith(ws.name)], (argv, "wrote outside the workspace")
    return code, out.getvalue(), stderr


# --- strategies -----------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
INTS = st.one_of(st.integers(-3, 300), st.integers(-2**70, 2**70)).map(str)
FLOATS = st.floats(allow_nan=True, allow_infinity=True).map(repr)
SMALL = st.integers(1, 3).map(str)  # values that pass, so that later checks get their turn
NUMBERS = st.one_of(*[SMALL] * 5, INTS, FLOATS, TEXT)
PATHS = st.sampled_from(["run", "new/deep/run", ".", "..", "docs", "docs/report.md", "keep.txt", "../outside", "",
                         "missing", "calib", "net.py"])


def _either(*known: str) -> st.SearchStrategy[str]:
    """Mostly one of ``known`` (the first, valid, most often), sometimes any text."""
    return st.one_of(*[st.just(known[0])] * 4, st.sampled_from(list(known)), st.sampled_from(list(known)), TEXT)


COMPILE_OPTIONS = {
    "--model": _either("squeezetime_tiny", "squeezetim", "net.py:Net", "net.py", "missing.py:Net", "net.py:Nope", ":", "lmuformer_tiny"),
    "--target": _either("eager", "onnx", "onxx", "EAGER", ""),
    "--weights": st.one_of(PATHS, st.sampled_from(["junk.pt", "nope.pt"])),
    "--input-shape": _either("1x3x8x64x64", "1x4", "1x3x8x64x0", "abc", "1x3x8x64x64x", "-1x3", "1,4", "x"),
    "--out": PATHS,
    "--pass": _either("quantize", "nope", "attention-to-conv:x=1", ":", "quantize:scheme", "quantize:scheme=int8"),
    "--precision": _either("fp32", "fp16", "bf16", "int8", "fp8", ""),
    "--calibration": PATHS,
    "--calibration-size": NUMBERS,
    "--quant-skip": TEXT,
    "--target-option": _either("threads=2", "onnx:x=1", "onxx:k=v", "=", "k=", "eager:a=b", "precision=fp16"),
    "--threads": NUMBERS,
    "--samples": NUMBERS,
    "--task-samples": NUMBERS,
    "--seed": NUMBERS,
}
COMPILE_FLAGS = ["--force", "--json", "--quant-sensitivity"]

BENCH_OPTIONS = {
    "--models": _either("squeezetime_tiny", "squeezetime_tiny,squeezetim", ",", "", "squeezetime_tiny,squeezetime_tiny"),
    "--targets": _either("eager", "eager,onnx", "onxx", ",", "", " eager , "),
    "--precisions": _either("fp32", "fp32,int8", "fp8", ",", "fp16"),
    "--pass": _either("quantize", "nope", ":"),
    "--out": PATHS,
    "--weights": _either("squeezetime_tiny=junk.pt", "squeezetime=junk.pt", "=", "squeezetime_tiny=", "x"),
    "--target-option": _either("threads=2", "onnx:x=1", "onxx:k=v", "="),
    "--threads": NUMBERS,
    "--min-sqnr": NUMBERS,
    "--max-accuracy-drop": NUMBERS,
    "--max-latency-ms": st.one_of(NUMBERS, st.sampled_from(["onxx=1", "onnx=20,eager=5", "onnx=", "=3", "20,", "eager=inf"])),
}
BENCH_FLAGS = ["--no-cache", "--json"]


@st.composite
def command_line(draw: st.DrawFn, command: list[str], options: dict[str, st.SearchStrategy[str]], flags: list[str],
                 required: tuple[str, ...] = ()) -> list[str]:
    """``command`` plus mostly-required options, some optional ones, flags, and now and then a stray token."""
    names = [n for n in required if draw(st.integers(0, 19)) > 0]  # a required option is now and then missing
    names += draw(st.lists(st.sampled_from(sorted(set(options) - set(required))), max_size=3))
    argv = list(command)
    for name in names:
        argv += [name, draw(options[name])]
    argv += draw(st.lists(st.sampled_from(flags), max_size=2, unique=True))
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(len(command), len(argv))), draw(st.one_of(TEXT, st.sampled_from(["--nope", "-x", "--"]))))
    return argv


@FUZZ
@given(argv=command_line(["compile"], COMPILE_OPTIONS, COMPILE_FLAGS, ("--model", "--target")))
def test_fuzz_compile(tmp_path: Path, argv: list[str]) -> None:
    run_cli(tmp_path, argv)


@FUZZ
@given(argv=command_line(["bench"], BENCH_OPTIONS, BENCH_FLAGS, ("--models", "--targets")))
def test_fuzz_bench(tmp_path: Path, argv: list[str]) -> None:
    run_cli(tmp_path, argv)


@settings(FUZZ, max_examples=25)
@given(argv=command_line(["train"], {"--model": _either("squeezetime_tiny", "emov2_1m", "nope"), "--out": PATHS,
                                     "--epochs": NUMBERS, "--train-clips": NUMBERS, "--val-clips": NUMBERS, "--lr": NUMBERS,
                                     "--seed": NUMBERS, "--data": _either("synthetic", "real")},
                         ["--json", "--force"], ("--model", "--out")))
def test_fuzz_train(tmp_path: Path, argv: list[str]) -> None:
    run_cli(tmp_path, argv)


@settings(FUZZ, max_examples=25)
@given(run_dir=st.one_of(PATHS, TEXT), out=st.one_of(PATHS, TEXT), force=st.booleans(), extra=st.lists(TEXT, max_size=1))
def test_fuzz_bundle(tmp_path: Path, run_dir: str, out: str, force: bool, extra: list[str]) -> None:
    run_cli(tmp_path, ["bundle", run_dir, "--out", out, *(["--force"] if force else []), *extra])


@settings(FUZZ, max_examples=25)
@given(folder=st.one_of(PATHS, TEXT), reports=st.lists(st.one_of(st.sampled_from(["device.json", "keep.txt", "docs", "nope.json"]), TEXT),
                                                        max_size=3))
def test_fuzz_report_merge(tmp_path: Path, folder: str, reports: list[str]) -> None:
    run_cli(tmp_path, ["report", "merge", folder, *reports])


@settings(FUZZ, max_examples=20)
@given(what=st.lists(st.one_of(st.sampled_from(["targets", "passes", "plugins", "model", "--json", "-h"]), TEXT), max_size=2))
def test_fuzz_list_and_top_level(tmp_path: Path, what: list[str]) -> None:
    # `list models` measures every zoo model (seconds): the cheap kinds and garbage only
    code, stdout, _ = run_cli(tmp_path, ["list", *what])
    if code == 0 and "--json" in what and "-h" not in what:
        import json

        assert isinstance(json.loads(stdout), dict)


def test_a_found_case_stays_fixed(tmp_path: Path) -> None:
    """The issue's own examples, replayed through the same harness (each once failed it)."""
    for argv in (["compile", "--model", "squeezetime_tiny", "--target", "eager", "--threads", "0"],
                 ["compile", "--model", "squeezetime_tiny", "--target", "eager", "--seed", "-1"],
                 ["bench", "--models", ",", "--targets", "eager"],
                 ["bench", "--models", "squeezetime_tiny", "--targets", "eager,onnx", "--max-latency-ms", "onxx=1"],
                 ["bench", "--models", "squeezetime_tiny", "--targets", "eager", "--min-sqnr", "nan"],
                 ["train", "--model", "squeezetime_tiny", "--out", "w.pt", "--epochs", "0"]):
        code, _, stderr = run_cli(tmp_path, argv)
        assert code == 2, (argv, stderr)
