"""Resources (issue 16, mechanism 5): memory for inputs, activations and calibration sets is estimated and a
run that cannot fit is refused up front with the figures and the fix; large calibration sets are streamed;
free disk is checked before the check's inputs are written.

The CLI cases run under ``ulimit -v 3 GiB`` (RLIMIT_AS): edgest counts that limit as what is available, so
they are refused the same way on any machine, and a regression fails with a MemoryError instead of
swapping the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from edgest import resources
from edgest.checks.isolated import run_in_child
from edgest.data import calibration
from edgest.data.calibration import StreamedInputs, calibration_inputs
from edgest.errors import BadInput
from edgest.records import InputSpec
from edgest.testing.stage_log import error_lines

GIB = 1 << 30
CLIP = InputSpec((1, 3, 8, 64, 64), layout="B,C,T,H,W")


# --- what is available ----------------------------------------------------------------------------

def test_meminfo_and_cgroup_figures_are_read(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683584 kB\nMemFree:  1000 kB\nMemAvailable:   2048 kB\n")
    assert resources._meminfo_available(str(meminfo)) == 2048 * 1024
    assert resources._meminfo_available(str(tmp_path / "missing")) is None
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("1073741824\n")
    (v2 / "memory.current").write_text("73741824\n")
    assert resources._cgroup_room(v2) == 1_000_000_000
    (v2 / "memory.max").write_text("max\n")
    assert resources._cgroup_room(v2) is None


def test_available_memory_is_at_most_the_machine() -> None:
    available = resources.available_memory()
    if not Path("/proc/meminfo").exists():
        pytest.skip("reads /proc/meminfo (Linux)")
    total = int(next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")).split()[1]) * 1024
    assert available is not None and 0 < available <= total


# --- inputs and activations -----------------------------------------------------------------------

def test_huge_input_shape_is_refused_with_the_figures() -> None:
    with pytest.raises(BadInput) as err:
        resources.check_run_memory((1, 3, 16, 4096, 4096), samples=8, task_samples=0, available=10 * GIB)
    # 8 inputs of 3 GiB, held by the compile and by the check process
    assert str(err.value) == ("input shape 1x3x16x4096x4096 needs ~48.0 GiB for 8 inputs, but only 10.0 GiB of memory is "
                              "available; use a smaller --input-shape or fewer --samples (input_shape=, samples=)")


def test_task_samples_count_and_are_named_in_the_fix() -> None:
    shape = (1, 3, 8, 64, 64)  # 384 KiB an input
    assert resources.check_run_memory(shape, 8, 0, available=GIB) == 2 * 8 * 384 * 1024
    with pytest.raises(BadInput, match=r"~193\.5 MiB for 8 inputs and 250 task samples, .* or --task-samples 0 \(task_samples=0\)$"):
        resources.check_run_memory(shape, 8, 250, available=100 << 20)


def _net(kind: str):  # noqa: ANN202 - a torch module, built here so torch is imported only by the tests that need it
    import torch

    class Repeat(torch.nn.Module):
        """(2, 8) -> (2000, 8) -> doubled: two 64,000-byte activations alive at once; counts its calls in a buffer."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("calls", torch.zeros(()))

        def forward(self, x):  # noqa: ANN001, ANN202
            self.calls += 1
            return x.repeat(1000, 1) * 2

    class Item(torch.nn.Module):
        def forward(self, x):  # noqa: ANN001, ANN202
            return x * float(x.sum().item())  # data-dependent: cannot be traced on fake tensors

    return Repeat() if kind == "repeat" else Item()


def test_activation_peak_is_traced_without_touching_the_module() -> None:
    net = _net("repeat")
    assert resources.activation_peak_bytes(net, (2, 8)) == 2 * 2000 * 8 * 4
    assert float(net.calls) == 0.0  # its buffer was replaced by a fake one, not updated
    assert resources.activation_peak_bytes(_net("item"), (2, 8)) is None


def test_activations_are_added_to_the_inputs() -> None:
    inputs = 2 * 8 * 2 * 8 * 4
    assert resources.check_run_memory((2, 8), 8, 0, _net("repeat"), available=GIB) == inputs + 128_000
    with pytest.raises(BadInput, match=r"needs ~126\.0 KiB for 8 inputs and activations, but only 100\.0 KiB"):
        resources.check_run_memory((2, 8), 8, 0, _net("repeat"), available=100 * 1024)
    # no estimate for a model that cannot be traced: it is judged on its inputs alone
    assert resources.check_run_memory((2, 8), 8, 0, _net("item"), available=100 * 1024) == inputs


# --- calibration ----------------------------------------------------------------------------------

def test_calibration_size_is_refused_with_the_figures() -> None:
    with pytest.raises(BadInput) as err:
        resources.check_calibration((1, 3, 8, 64, 64), 100_000, available=10 * GIB)
    assert str(err.value) == ("--calibration-size 100000 at input 1x3x8x64x64 needs ~36.6 GiB (100000 inputs of 384.0 KiB), "
                              "but only 10.0 GiB of memory is available; use a smaller --calibration-size "
                              "(calibration_size=; at most 27,306 here, the default is 32)")


def test_calibration_is_refused_before_a_clip_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "available_memory", lambda: 4 * GIB)
    tracemalloc.start()
    try:
        with pytest.raises(BadInput, match=r"--calibration-size 100000 at input 1x3x8x64x64 needs ~36\.6 GiB"):
            calibration_inputs(CLIP, 100_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes allocated before refusing"


@pytest.mark.parametrize("spec", [CLIP, InputSpec((1, 16, 16), layout="B,L,C"), InputSpec((2, 5))], ids=["clips", "glides", "noise"])
def test_a_large_calibration_set_is_streamed_with_the_same_inputs(monkeypatch: pytest.MonkeyPatch, spec: InputSpec) -> None:
    held = calibration_inputs(spec, 5, seed=3)
    assert isinstance(held.inputs, list)
    monkeypatch.setattr(calibration, "HOLD_BYTES", 1)
    streamed = calibration_inputs(spec, 5, seed=3)
    assert isinstance(streamed.inputs, StreamedInputs) and len(streamed) == 5
    assert streamed.source == held.source
    for _ in range(2):  # quantizers may read the set more than once
        got = list(streamed.inputs)
        assert len(got) == 5 and all(np.array_equal(a[0], b[0]) for a, b in zip(got, held.inputs, strict=True))
    assert np.array_equal(streamed.inputs[-1][0], held.inputs[4][0])
    assert [x[0].shape for x in streamed.inputs[1:3]] == [spec.shape, spec.shape]
    with pytest.raises(IndexError):
        streamed.inputs[5]


def test_streamed_npy_folder_names_a_bad_file_up_front(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for i in range(3):
        np.save(tmp_path / f"{i}.npy", np.full((1, 4), i, np.float32))
    monkeypatch.setattr(calibration, "HOLD_BYTES", 1)
    calib = calibration_inputs(InputSpec((1, 4)), 8, tmp_path)
    assert isinstance(calib.inputs, StreamedInputs)
    assert [float(x[0][0, 0]) for x in calib.inputs] == [0.0, 1.0, 2.0]
    np.save(tmp_path / "3.npy", np.zeros((1, 5), np.float32))
    with pytest.raises(BadInput, match=r"calibration file '.*3\.npy' has shape 1x5; the model takes 1x4"):
        calibration_inputs(InputSpec((1, 4)), 8, tmp_path)


# --- disk -----------------------------------------------------------------------------------------

def test_free_disk_is_checked_at_the_nearest_existing_folder(tmp_path: Path) -> None:
    free = resources.check_free_disk(tmp_path / "not" / "yet", 1)
    assert free > 0
    with pytest.raises(BadInput) as err:
        resources.check_free_disk(tmp_path / "out", free + (1 << 50), "the artifact")
    assert str(err.value).startswith(f"no space left writing the artifact in '{tmp_path / 'out'}' (not enough disk): ~")
    assert str(err.value).endswith("free; free some space or choose another --out (out_dir=)")


def test_check_inputs_are_not_written_to_a_full_temp_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil
    import tempfile

    from edgest.targets.eager import EagerTarget

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(resources.shutil, "disk_usage", lambda _: usage._replace(free=1000))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(BadInput, match=r"no space left writing the check's inputs in .* \(not enough disk\): ~3\.1 KiB needed, 1000 B free; "
                                       r"free some space or point TMPDIR to a disk with room"):
        run_in_child(EagerTarget(), tmp_path / "model.pt2", [[np.zeros((4, 50), np.float32)]] * 4)
    assert list(tmp_path.iterdir()) == []


# --- through the CLI ------------------------------------------------------------------------------

def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 * GIB, 3 * GIB))


def _edgest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgest", "compile", "--model", "squeezetime_tiny", "--out", "out", *args],
                          cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300, preexec_fn=_limit_memory)


def _one_line(proc: subprocess.CompletedProcess[str], tmp_path: Path) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("edgest: error: "), proc.stderr
    assert list(tmp_path.iterdir()) == [], "something was written"
    return lines[0]


def test_cli_refuses_a_huge_calibration_size(tmp_path: Path) -> None:
    proc = _edgest(tmp_path, "--target", "onnx", "--precision", "int8", "--calibration-size", "100000", "--samples", "1")
    line = _one_line(proc, tmp_path)
    assert "--calibration-size 100000 at input 1x3x8x64x64 needs ~36.6 GiB (100000 inputs of 384.0 KiB)" in line
    assert "use a smaller --calibration-size" in line


def test_cli_refuses_a_huge_input_shape(tmp_path: Path) -> None:
    proc = _edgest(tmp_path, "--target", "onnx", "--input-shape", "1x3x16x4096x4096")
    line = _one_line(proc, tmp_path)
    assert "input shape 1x3x16x4096x4096 needs ~48.0 GiB for 8 inputs" in line
    assert "use a smaller --input-shape or fewer --samples" in line
