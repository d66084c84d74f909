"""The check process started ahead (edgest.checks.ready): the check runs in it, gives what a fresh child gives,
and it never outlives its block, used or not; one that cannot serve the check is replaced by a fresh child."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from edgest.checks.isolated import run_in_child
from edgest.checks.ready import ready_worker
from edgest.testing.processes import alive

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import crashy_targets

INPUTS = [[np.full((2, 8), i, np.float32)] for i in range(3)]


def _artifact(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"the artifact\n")
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to see whether a process lives")
def test_the_check_runs_in_the_process_started_ahead(tmp_path: Path) -> None:
    target, path = crashy_targets.EchoTarget(), _artifact(tmp_path)
    with ready_worker(target, 1) as ready:
        assert ready is not None and alive(ready.pid)
        outcome = run_in_child(target, path, INPUTS, latency=None, ready=ready)
        assert ready.take(1) is None  # one-shot
    assert crashy_targets.echo_pid(outcome) == ready.pid and not alive(ready.pid)
    fresh = run_in_child(target, path, INPUTS, latency=None)
    assert crashy_targets.echo_pid(fresh) != ready.pid
    for ours, theirs in zip(outcome.outputs, fresh.outputs):
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1])
    timed = crashy_targets.EchoTarget()
    with ready_worker(timed, 1) as ready:
        outcome = run_in_child(timed, path, INPUTS, ready=ready)  # with the latency check, as a compile runs it
    assert crashy_targets.echo_pid(outcome) == ready.pid and outcome.latency["p50_ms"] > 0 and "cold_load_ms" in outcome.load


def test_it_imports_the_runtime_a_fresh_child_imports(tmp_path: Path) -> None:
    target, path = crashy_targets.RuntimeModulesTarget(), _artifact(tmp_path)
    with ready_worker(target, 1) as ready:
        ahead = run_in_child(target, path, INPUTS[:1], latency=None, ready=ready)
    fresh = run_in_child(target, path, INPUTS[:1], latency=None)
    assert ahead.outputs[0][0].tolist() == fresh.outputs[0][0].tolist() == [1, 0]  # colorsys, not wave


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to see whether a process lives")
def test_one_that_cannot_serve_the_check_is_replaced_and_none_outlives_its_block(tmp_path: Path) -> None:
    target, path = crashy_targets.EchoTarget(), _artifact(tmp_path)
    with ready_worker(target, 2) as ready:  # started for 2 threads: a 1-thread check must not use it
        other = run_in_child(target, path, INPUTS, latency=None, ready=ready)
        assert not alive(ready.pid)
    assert crashy_targets.echo_pid(other) != ready.pid and not other.failure
    with ready_worker(target, 1) as ready:
        os.killpg(ready.pid, signal.SIGKILL)
        survivor = run_in_child(target, path, INPUTS, latency=None, ready=ready)
    assert crashy_targets.echo_pid(survivor) != ready.pid and not survivor.failure
    with pytest.raises(RuntimeError, match="lowering failed"), ready_worker(target, 1) as ready:
        assert alive(ready.pid)
        raise RuntimeError("lowering failed")
    assert not alive(ready.pid)


def test_a_target_the_worker_cannot_import_by_name_gets_none() -> None:
    class Local(crashy_targets.EchoTarget):
        name = "local"

    with ready_worker(Local(), 1) as ready:
        assert ready is None
