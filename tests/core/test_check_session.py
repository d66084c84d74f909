"""One check process for many runs (edgest.checks.session): the runs share a worker, and a runtime that crashes,
hangs or raises costs only its own run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from edgest.checks.isolated import run_in_child
from edgest.checks.session import check_session
from edgest.testing.processes import alive

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import crashy_targets

INPUTS = [[np.full((2, 8), i, np.float32)] for i in range(3)]


def _artifacts(tmp_path: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = tmp_path / f"model{i}.bin"
        path.write_bytes(f"artifact {i}\n".encode())
        paths.append(path)
    return paths


def test_runs_share_one_worker_and_give_what_a_fresh_child_gives(tmp_path: Path) -> None:
    target = crashy_targets.EchoTarget()
    paths = _artifacts(tmp_path, 3)
    with check_session(timeout_s=60) as session:
        outcomes = [session.run(target, path, INPUTS) for path in paths]
        assert session.started == 1
    pids = {crashy_targets.echo_pid(o) for o in outcomes}
    assert len(pids) == 1 and os.getpid() not in pids
    fresh = run_in_child(target, paths[2], INPUTS, latency=None)
    for i, (ours, theirs) in enumerate(zip(outcomes[2].outputs, fresh.outputs)):
        np.testing.assert_array_equal(ours[0], INPUTS[i][0] * 2)
        np.testing.assert_array_equal(ours[1], theirs[1])
    assert bytes(outcomes[1].outputs[0][1].astype(np.uint8)) == b"artifact 1\n"
    assert outcomes[0].latency is None and not outcomes[0].failure


def _in_one_session(timeout_s: float, runs: list[tuple[object, Path]], threads: tuple[int, ...] = ()) -> tuple[list, int]:
    """Each (target, artifact) run in turn in one session (at ``threads``, default 1 each); the outcomes and how many
    workers it started."""
    counts = threads or (1,) * len(runs)
    with check_session(timeout_s=timeout_s) as session:
        return [session.run(t, path, INPUTS, threads=n) for (t, path), n in zip(runs, counts)], session.started


def test_a_crash_or_a_hang_costs_only_its_run(tmp_path: Path) -> None:
    (path,) = _artifacts(tmp_path, 1)
    echo = crashy_targets.EchoTarget()
    runs = [echo, crashy_targets.SegfaultTarget(), echo, crashy_targets.HangTarget(), echo]
    (first, crashed, second, hung, third), started = _in_one_session(3, [(t, path) for t in runs])
    assert started == 3
    assert crashed.outputs is None and "crashed (SIGSEGV) in the check process" in crashed.failure
    assert hung.outputs is None and "did not finish within 3 s and was killed" in hung.failure
    assert len({crashy_targets.echo_pid(first), crashy_targets.echo_pid(second), crashy_targets.echo_pid(third)}) == 3
    assert not any(alive(crashy_targets.echo_pid(o)) for o in (first, second, third))


def test_a_runner_that_raises_fails_its_run_and_the_worker_goes_on(tmp_path: Path) -> None:
    (path,) = _artifacts(tmp_path, 1)
    echo = crashy_targets.EchoTarget()
    runs = [(echo, path), (crashy_targets.RaisingTarget(), path), (echo, tmp_path / "no-such-artifact.bin"), (echo, path)]
    (before, raised, missing, after), started = _in_one_session(60, runs)
    assert started == 1
    assert raised.failure == "runner failed: RuntimeError: kaboom in the vendor runtime"
    assert missing.outputs is None and "runner failed: FileNotFoundError" in missing.failure
    assert crashy_targets.echo_pid(before) == crashy_targets.echo_pid(after)


def test_another_thread_count_gets_a_worker_started_with_it(tmp_path: Path) -> None:
    (path,) = _artifacts(tmp_path, 1)
    echo = crashy_targets.EchoTarget()
    outcomes, started = _in_one_session(60, [(echo, path)] * 4, threads=(1, 1, 2, 2))
    assert started == 2
    pids = [crashy_targets.echo_pid(o) for o in outcomes]
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_leaving_the_session_ends_its_worker_and_removes_its_folder(tmp_path: Path) -> None:
    paths = _artifacts(tmp_path, 1)
    with pytest.raises(KeyError), check_session(timeout_s=60) as session:
        pid = crashy_targets.echo_pid(session.run(crashy_targets.EchoTarget(), paths[0], INPUTS))
        work = session.work
        assert alive(pid) and work.is_dir()
        raise KeyError("the caller's own error")
    assert not alive(pid) and not work.exists()


@pytest.mark.parametrize("runtime_modules,loaded", [("given", [1, 0]), ("none", [1, 1])])
def test_a_check_process_imports_the_runtime_modules_and_not_the_rest_of_requires(tmp_path, runtime_modules, loaded):
    target = crashy_targets.RuntimeModulesTarget(runtime_modules=runtime_modules)
    outcome = run_in_child(target, _artifacts(tmp_path, 1)[0], INPUTS[:1], latency=None)
    assert outcome.outputs is not None, outcome.failure
    assert outcome.outputs[0][0].tolist() == loaded
