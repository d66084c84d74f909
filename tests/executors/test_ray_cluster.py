"""The Ray executor on one real loopback cluster, shared by every test here: a head (the driver's node, one CPU,
no device) and two one-CPU worker nodes: ``lab`` has devices ``lab`` and ``spare``, ``spare`` has device ``spare``.

Default run (CI): device jobs run only on their device's node and an unplaceable job is reported at once; a
tiny bench (one eager cell of lmuformer_tiny) over the cluster equals the local executor's, on the device node
it asked for, and is found in the cache by the node the second time; a chaos test kills the node a cell has
started on, and the bench completes with that cell retried on the other node (it runs after the others: it
leaves one worker node). Slow: a bare job retried after its node is killed, and Ctrl-C cancelling running
tasks (each waits for a task's sleep).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import jobs
import normalise
from ray_cluster import cluster, within

from edgest.bench import run_bench
from edgest.checks.latency import LatencyConfig
from edgest.executors import Job, get_executor
from edgest.executors.cluster import RayExecutor

TARGETS = {"edgest-target:eager": 1.0, "edgest-target:onnx": 1.0}
HEAD = {"num_cpus": 1, "resources": TARGETS}
NODES = {"lab": {"num_cpus": 1, "resources": {**TARGETS, "device:lab": 1.0, "device:spare": 1.0}},
         "spare": {"num_cpus": 1, "resources": {**TARGETS, "device:spare": 1.0}}}
FAST = LatencyConfig(warmup=1, min_runs=5, min_seconds=0.0)
MATRIX = (["lmuformer_tiny"], ["eager"], ["fp32"])  # one cell: the cheapest real compile in the zoo
BENCH_S = 300  # a bench over the cluster that takes longer has a cell left pending: fail, do not hang


@pytest.fixture(scope="module")
def ray_nodes():
    with cluster(HEAD, **NODES) as (c, nodes):
        yield c, nodes


@pytest.fixture(scope="module")
def local_bench(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("local")
    return out, run_bench(*MATRIX, out, latency=FAST, samples=4)


def _bench(out: Path, executor, devices: dict[str, str]) -> dict:
    return within(BENCH_S, f"the bench over the Ray cluster into {out.name}", lambda: run_bench(
        *MATRIX, out, latency=FAST, samples=4, executor=executor, devices=devices))


def test_device_cells_run_only_on_the_node_with_that_device_and_unplaceable_ones_are_reported_at_once(ray_nodes):
    _, nodes = ray_nodes
    onnx = {"CPU": 1.0, "edgest-target:onnx": 0.001}
    job_list = [Job(i, f"d{i}", jobs.square, i, {**onnx, "device:lab": 1.0}) for i in range(3)]
    job_list += [Job(3, "host", jobs.square, 3, onnx), Job(4, "jetson", jobs.square, 4, {**onnx, "device:jetson": 1.0})]
    started: list[int] = []
    done = within(120, "five trivial jobs", lambda: list(
        RayExecutor().run(job_list, 0, on_start=lambda job, where: started.append(job.index))))
    assert done[0].index == 4 and done[0].attempts == 0  # before anything ran: not left pending
    assert done[0].error.startswith("not placed: no live node of the Ray cluster offers device:jetson;")
    by_index = {d.index: d for d in done}
    assert {i: by_index[i].value["value"] for i in range(4)} == {0: 0, 1: 1, 2: 4, 3: 9}
    assert {by_index[i].where["node"] for i in range(3)} == {nodes["lab"].node_id}
    assert sorted(started) == [0, 1, 2, 3]


def test_a_bench_over_the_cluster_matches_local_and_runs_on_the_device_node_it_asks_for(ray_nodes, local_bench, tmp_path):
    _, nodes = ray_nodes
    out = tmp_path / "ray"
    doc = _bench(out, get_executor("ray"), {"eager": "lab"})
    normalise.assert_same_bench(out, doc, *local_bench)
    (cell,) = doc["cells"]
    assert cell["ran_on"]["executor"] == "ray" and cell["ran_on"]["node"] == nodes["lab"].node_id
    assert cell["ran_on"]["attempts"] == 1 and cell["ran_on"]["pid"] != os.getpid()
    again = _bench(out, get_executor("ray"), {"eager": "lab"})
    assert [c["cached"] for c in again["cells"]] == [True]  # the key the node computes finds the driver's copy


class _KillFirstNode:
    """A Ray executor that kills the node the first cell starts on (a chaos monkey with perfect timing)."""

    def __init__(self, c, inner):
        self.c, self.inner, self.killed = c, inner, []
        self.name, self.remote, self.store = inner.name, inner.remote, inner.store

    def run(self, jobs, shared=None, on_start=None):
        by_id = {n.node_id: n for n in self.c.worker_nodes}

        def start(job, where):
            if not self.killed and where["node"] in by_id:
                self.killed.append(where["node"])
                self.c.remove_node(by_id[where["node"]], allow_graceful=False)
            if on_start:
                on_start(job, where)

        return self.inner.run(jobs, shared, start)


def test_a_node_killed_under_a_running_cell_has_the_cell_retried_elsewhere_and_the_bench_completes(
        ray_nodes, local_bench, tmp_path):
    c, nodes = ray_nodes
    chaos = _KillFirstNode(c, get_executor("ray"))
    doc = _bench(tmp_path / "chaos", chaos, {"eager": "spare"})  # lab or spare: the other takes the retry
    assert len(chaos.killed) == 1, "the cell never started on a worker node"
    normalise.assert_same_bench(tmp_path / "chaos", doc, *local_bench)
    (cell,) = doc["cells"]
    assert cell["status"] == "passed" and cell["ran_on"]["attempts"] == 2, cell["ran_on"]
    assert chaos.killed[0][:8] in cell["ran_on"]["failures"][0]
    spares = {nodes["lab"].node_id, nodes["spare"].node_id}
    assert chaos.killed[0] in spares and cell["ran_on"]["node"] == (spares - {chaos.killed[0]}).pop()


@pytest.mark.slow
def test_a_node_killed_mid_job_has_the_job_retried_on_another(ray_nodes):
    c, _ = ray_nodes
    spare = {name: c.add_node(num_cpus=1, resources={"chaos": 1.0}) for name in ("a", "b")}
    by_id = {n.node_id: n for n in spare.values()}
    killed: list[str] = []

    def kill_first(job, where):
        if not killed:
            killed.append(where["node"])
            c.remove_node(by_id[where["node"]], allow_graceful=False)

    done = within(120, "a job whose node is killed", lambda: list(RayExecutor(retries=2).run(
        [Job(0, "chaos", jobs.nap, 3.0, {"CPU": 1.0, "chaos": 1.0})], None, on_start=kill_first)))
    assert len(done) == 1 and not done[0].error, done[0].error
    assert done[0].attempts == 2 and done[0].where["node"] != killed[0]
    assert done[0].failures[0].startswith("attempt 1 on ") and killed[0][:8] in done[0].failures[0]


@pytest.mark.slow
def test_ctrl_c_cancels_the_tasks_still_running_on_the_cluster(ray_nodes, tmp_path):
    marker = tmp_path / "finished"

    def interrupt(job, where):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(RayExecutor().run([Job(0, "long", jobs.nap_then_touch, (4.0, str(marker)), {"CPU": 1.0})], None,
                               on_start=interrupt))
    import ray

    waiter = ray.remote(jobs.nap).options(num_cpus=1).remote(None, 6.0)  # outlasts the task's 4 s, had it kept running
    ray.get(waiter, timeout=120)
    assert not marker.exists()  # the cancelled task never reached its end
