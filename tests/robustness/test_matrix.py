"""Robustness matrix, part 2 (part 1 is tests/cli/test_bad_input.py): plugins, user model
files, unsupported constructs and ops, interrupts, concurrent runs, a full disk.

Each case runs the real CLI and expects one ``edgest: error:`` line naming the problem and
the fix, a non-zero exit, no traceback, and nothing left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgest.testing.fake_dist import write_fake_distribution
from edgest.testing.stage_log import error_lines

PLUGIN = '''
import os, time
from pathlib import Path
import edgest
from edgest.targets.eager import EagerRunner

class GhostTarget(edgest.Target):
    name = "ghost"
    artifact_format = "bin"
    requires = ("edgest_ghost_runtime_not_installed",)
    install_hint = "pip install ghost-runtime"
    def lower(self, program, example_inputs, out_dir): raise AssertionError("never reached")
    def load(self, path, threads): raise AssertionError("never reached")

class SlowTarget(edgest.Target):
    """Saves the program, then waits: long enough to interrupt, or to race another run."""
    name = "slow"
    artifact_format = "pt2"
    def lower(self, program, example_inputs, out_dir):
        import torch
        path = out_dir / "model.pt2"
        torch.export.save(program, str(path))
        marker = os.environ.get("EDGEST_TEST_MARKER")
        if marker:
            Path(marker).write_text(str(out_dir))
        time.sleep(float(os.environ.get("EDGEST_TEST_SLOW_S", "0")))
        return edgest.Lowered(path)
    def load(self, path, threads): return EagerRunner(path, threads)

@edgest.hookimpl
def register_targets(register):
    register(GhostTarget)
    register(SlowTarget)
'''

DUPLICATE = '''
import edgest
from edgest.targets.eager import EagerTarget

class AnotherOnnx(EagerTarget):
    name = "onnx"

@edgest.hookimpl
def register_targets(register):
    register(AnotherOnnx)
'''


@pytest.fixture
def work(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    write_fake_distribution(plugins, "robust", PLUGIN)
    (tmp_path / "run").mkdir()
    return tmp_path


def _env(work: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(work / "plugins"), **extra}


def edgest(work: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgest", *args], cwd=work / "run", env=_env(work, **env),
                          capture_output=True, text=True, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess[str], *words: str, code: int | None = None) -> str:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode != 0 if code is None else proc.returncode == code, (proc.returncode, proc.stderr)
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("edgest: error: "), lines[0]
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"
    return lines[0]


def nothing_left(work: Path) -> None:
    assert sorted(p.name for p in (work / "run").iterdir() if p.suffix != ".py") == []


def user_model(work: Path, body: str, name: str = "user_model.py") -> str:
    (work / "run" / name).write_text(textwrap.dedent(body))
    return name


def test_unknown_pass_lists_alternatives(work):
    proc = edgest(work, "compile", "--model", "squeezetime_tiny", "--target", "eager", "--pass", "quantise")
    one_line_error(proc, "unknown pass 'quantise'; available:", code=2)
    nothing_left(work)


def test_malformed_pass_option(work):
    proc = edgest(work, "compile", "--model", "squeezetime_tiny", "--target", "eager", "--pass", "x:novalue")
    one_line_error(proc, "malformed pass option 'novalue'", "NAME:key=value", code=2)


def test_user_model_file_that_raises_on_import(work):
    ref = user_model(work, "import torch\nraise RuntimeError('needs CUDA')\n")
    proc = edgest(work, "compile", "--model", f"{ref}:Net", "--input-shape", "1x3", "--target", "eager")
    one_line_error(proc, "cannot import model file 'user_model.py': RuntimeError: needs CUDA", "fix the file", code=2)
    nothing_left(work)


def test_user_model_file_without_the_named_class(work):
    ref = user_model(work, "import torch\nclass Net(torch.nn.Module):\n    def forward(self, x): return x\n")
    proc = edgest(work, "compile", "--model", f"{ref}:Nett", "--input-shape", "1x3", "--target", "eager")
    one_line_error(proc, "has no 'Nett'; nn.Module classes in it: Net", code=2)


def test_user_model_file_needs_an_input_shape(work):
    ref = user_model(work, "import torch\nclass Net(torch.nn.Module):\n    def forward(self, x): return x\n")
    proc = edgest(work, "compile", "--model", f"{ref}:Net", "--target", "eager")
    one_line_error(proc, "needs --input-shape", code=2)


def test_data_dependent_control_flow_is_named_with_its_line(work):
    ref = user_model(work, """
        import torch
        class Net(torch.nn.Module):
            def forward(self, x):
                if x.sum() > 0:
                    return x * 2
                return x
        """)
    proc = edgest(work, "compile", "--model", f"{ref}:Net", "--input-shape", "2x3", "--target", "eager")
    one_line_error(proc, "torch.export cannot capture the model: data-dependent control flow", "user_model.py:5", "torch.cond", code=1)
    nothing_left(work)


def test_op_the_target_cannot_lower_is_named_with_its_origin(work):
    ref = user_model(work, """
        import torch
        class Net(torch.nn.Module):
            def forward(self, x):
                return torch.cummax(x, 1)[0] + 1
        """)
    proc = edgest(work, "compile", "--model", f"{ref}:Net", "--input-shape", "2x5", "--target", "onnx")
    one_line_error(proc, "target 'onnx' cannot lower op aten.cummax.default (from user_model.py:5)", "choose another target", code=1)
    nothing_left(work)


def test_missing_runtime_says_how_to_install(work):
    proc = edgest(work, "compile", "--model", "squeezetime_tiny", "--target", "ghost")
    one_line_error(proc, "target 'ghost' unavailable: edgest_ghost_runtime_not_installed not installed (pip install ghost-runtime)", code=1)
    listing = edgest(work, "list", "targets", "--json")
    assert listing.returncode == 0 and '"available": "no: edgest_ghost_runtime_not_installed not installed' in listing.stdout


def test_plugin_registering_a_duplicate_name(work):
    write_fake_distribution(work / "plugins", "dup", DUPLICATE)
    proc = edgest(work, "list", "targets")
    # the clash is named once, with both plugins and how to choose; the other commands keep working
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 0 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for part in ("target 'onnx'", "plugin 'dup'", "plugin 'onnx'", "EDGEST_LOAD_PLUGINS"):
        assert part in lines[0], lines[0]
    ok = edgest(work, "list", "targets", EDGEST_LOAD_PLUGINS="onnx,models")
    assert ok.returncode == 0, ok.stderr


def test_ctrl_c_during_lowering_leaves_nothing(work):
    marker = work / "lowering"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgest", "compile", "--model", "squeezetime_tiny", "--target", "slow", "--out", "out"],
        cwd=work / "run", env=_env(work, EDGEST_TEST_MARKER=str(marker), EDGEST_TEST_SLOW_S="60"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as from a terminal: a shell's background job (nohup cmd &) starts with SIGINT ignored, and so would this child
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate()[1]
    staging = Path(marker.read_text())
    assert staging.exists() and staging.name.startswith(".out.partial-")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip() == "edgest: interrupted (SIGINT); nothing was written"
    nothing_left(work)


def test_two_compiles_into_one_folder(work):
    args = [sys.executable, "-m", "edgest", "compile", "--model", "squeezetime_tiny", "--target", "slow", "--out", "same", "--samples", "1"]
    env = _env(work, EDGEST_TEST_SLOW_S="3")
    procs = [subprocess.Popen(args, cwd=work / "run", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=240), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes[0] in (0, 1) and codes[1] == 2, results  # one wins (0, or 1 if its latency check fails), one is refused
    loser = next(err for code, err in results if code == 2)
    assert "Traceback" not in loser and "was created by another run meanwhile" in loser
    run = work / "run"
    assert sorted(p.name for p in run.iterdir()) == ["same"]
    assert sorted(p.name for p in (run / "same").iterdir()) == [".edgest.json", "model.pt2", "reference.npz", "report.json", "report.md"]


def test_full_disk_is_reported_and_cleaned_up(work):
    mnt = work / "run" / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a 256 KiB tmpfs that fills up")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()[:80]})")
    try:
        proc = edgest(work, "compile", "--model", "squeezetime_tiny", "--target", "eager", "--out", "small/out", "--samples", "1")
        one_line_error(proc, "no space left writing", "choose another --out", code=2)
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_weights_of_the_wrong_dtype(work):
    import torch

    from edgest_models.squeezetime import squeezetime_tiny

    state = {k: (v * 0).to(torch.int64) if v.is_floating_point() else v for k, v in squeezetime_tiny().state_dict().items()}
    torch.save(state, work / "run" / "int_weights.pt")
    proc = edgest(work, "compile", "--model", "squeezetime_tiny", "--target", "eager", "--weights", "int_weights.pt", "--out", "o")
    one_line_error(proc, "weights 'int_weights.pt' do not match the model: dtype mismatch:", "int64 vs float32", code=2)
    assert sorted(p.name for p in (work / "run").iterdir()) == ["int_weights.pt"]
