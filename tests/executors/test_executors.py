"""The executor interface: local and pool run the same jobs to the same values; choices and mistakes are one line."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from edgest.bench import Cell
from edgest.bench_jobs import needs, parse_devices
from edgest.errors import BadInput, TargetUnavailable
from edgest.executors import Job, get_executor
from edgest.executors.cluster import unplaceable
from edgest.executors.timing import HostLock
from edgest.testing.processes import alive

sys.path.insert(0, os.path.dirname(__file__))
import jobs


def _values(executor, job_list, shared=None):
    return {d.index: d for d in executor.run(job_list, shared)}


def test_local_and_pool_give_the_same_values_and_the_pool_uses_other_processes():
    job_list = [Job(i, f"job {i}", jobs.square, i) for i in range(4)]
    local = _values(get_executor("local"), job_list, 10)
    pool = _values(get_executor("pool", jobs=2), job_list, 10)
    assert {i: d.value["value"] for i, d in local.items()} == {i: d.value["value"] for i, d in pool.items()} == \
        {0: 10, 1: 11, 2: 14, 3: 19}
    assert {d.value["pid"] for d in local.values()} == {os.getpid()}
    assert os.getpid() not in {d.value["pid"] for d in pool.values()}
    assert all(d.where["executor"] == "pool" and d.where["pid"] == d.value["pid"] for d in pool.values())


def test_a_failing_job_in_the_pool_is_its_outcome_not_the_end_of_the_run():
    done = _values(get_executor("pool", jobs=2), [Job(0, "ok", jobs.square, 3), Job(1, "bad", jobs.fail, 1)])
    assert done[0].value["value"] == 9 and not done[0].error
    assert done[1].value is None and done[1].error == "ValueError: job 1 fails on purpose"


def test_choices_that_do_not_fit_are_one_line():
    with pytest.raises(BadInput, match="unknown executor 'pol'; available: local, pool, ray"):
        get_executor("pol")
    with pytest.raises(BadInput, match=r"--jobs \(2\) sets the pool's processes; add --executor pool"):
        get_executor("local", jobs=2)
    with pytest.raises(BadInput, match=r"--address \(x:1\) names a Ray cluster; add --executor ray"):
        get_executor("pool", address="x:1")


def test_without_ray_the_ray_executor_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError, as when it is not installed
    with pytest.raises(TargetUnavailable) as err:
        get_executor("ray")
    assert str(err.value) == "executor 'ray' unavailable: ray not installed (pip install 'edgest[ray]')"


def test_device_labels_become_resources_one_unit_per_device():
    devices = parse_devices(["onnx=pixel-8"], ["eager", "onnx"])
    assert devices == {"onnx": "pixel-8"}
    assert needs(Cell("m", "onnx", "fp32"), devices) == {"CPU": 1.0, "edgest-target:onnx": 0.001, "device:pixel-8": 1.0}
    assert needs(Cell("m", "eager", "fp32"), devices) == {"CPU": 1.0, "edgest-target:eager": 0.001}
    assert parse_devices(["lab"], ["onnx"]) == {"*": "lab"}
    with pytest.raises(BadInput, match="names target 'tvm', which is not in the bench"):
        parse_devices(["tvm=x"], ["onnx"])
    with pytest.raises(BadInput, match="malformed --device 'onnx='"):
        parse_devices(["onnx="], ["onnx"])


def test_placement_check_names_the_resource_no_live_node_offers():
    nodes = [{"Alive": True, "Resources": {"CPU": 2.0, "edgest-target:onnx": 1.0}},
             {"Alive": False, "Resources": {"CPU": 2.0, "device:jetson": 1.0}},
             {"Alive": True, "Resources": {"CPU": 1.0, "device:pixel-8": 1.0}}]
    assert unplaceable({"CPU": 1.0, "edgest-target:onnx": 0.001}, nodes) == ""
    assert "offers device:jetson;" in unplaceable({"CPU": 1.0, "device:jetson": 1.0}, nodes)  # its only node is dead
    split = unplaceable({"CPU": 1.0, "edgest-target:onnx": 0.001, "device:pixel-8": 1.0}, nodes)
    assert "offers CPU, edgest-target:onnx, device:pixel-8 together" in split  # each exists, never on one node


def test_timing_waits_for_compiles_and_compiles_wait_for_timing(tmp_path):
    compiling, timing = HostLock(tmp_path), HostLock(tmp_path)
    events: list[str] = []
    compiling.shared()
    waiter = threading.Thread(target=lambda: (timing.exclusive(), events.append("timing"), timing.release()))
    waiter.start()
    waiter.join(0.5)
    events.append("compile done")
    compiling.release()
    waiter.join()
    timing.exclusive()
    late = threading.Thread(target=lambda: (compiling.shared(), events.append("next compile")))
    late.start()
    late.join(0.5)
    events.append("timing done")
    timing.release()
    late.join()
    assert events == ["compile done", "timing", "timing done", "next compile"]
    compiling.close(), timing.close()


def test_the_timing_policy_is_turns_unless_asked_for_alone(monkeypatch):
    from edgest.executors.timing import policy

    monkeypatch.delenv("EDGEST_TIMING_LOCK", raising=False)
    assert policy() == "turns"
    monkeypatch.setenv("EDGEST_TIMING_LOCK", "alone")
    assert policy() == "alone"
    monkeypatch.setenv("EDGEST_TIMING_LOCK", "strict")
    with pytest.raises(BadInput, match="EDGEST_TIMING_LOCK='strict' is not a timing policy; give turns or alone"):
        policy()


def test_an_unreachable_ray_address_is_one_line_within_seconds():
    pytest.importorskip("ray", reason="ray not installed (pip install 'edgest[ray]')")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BadInput, match=rf"cannot reach a Ray cluster at '127.0.0.1:{port}' .*ray start --head"):
        get_executor("ray", address=f"127.0.0.1:{port}")  # the outside round: ray.init retried past 180 s
    with pytest.raises(BadInput, match="is not host:port"):
        get_executor("ray", address="nowhere")


_IDLE_POOL = """
import os, sys, time
from edgest.executors.pool import PoolExecutor
ex = PoolExecutor(1)
with ex.warm():
    print(ex._pool.submit(os.getpid).result(), flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("how", ["SIGTERM to the worker", "kill -9 of the bench"])
def test_an_idle_pool_worker_ends_quietly_and_with_its_bench(how):
    import signal
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", _IDLE_POOL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    os.kill(worker if how.startswith("SIGTERM") else proc.pid, signal.SIGTERM if how.startswith("SIGTERM") else signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and alive(worker):
        time.sleep(0.2)
    assert not alive(worker)  # the outside round: orphaned workers after kill -9; a traceback on SIGTERM
    proc.kill()
    assert "Traceback" not in proc.communicate()[1]

