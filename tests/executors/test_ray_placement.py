"""The Ray executor on a real loopback cluster, with trivial jobs: placement by device label and an unplaceable
job reported at once (the default run: one cluster, seconds); a node killed mid-job with the job retried elsewhere,
and Ctrl-C cancelling the running tasks (slow: they wait for Ray to notice a dead node, or for a task's time)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import jobs
from ray_cluster import cluster

from edgest.executors import Job
from edgest.executors.cluster import RayExecutor

LAB = {"num_cpus": 1, "resources": {"edgest-target:onnx": 1.0, "device:lab": 1.0}}
PLAIN = {"num_cpus": 1, "resources": {"edgest-target:onnx": 1.0}}


@pytest.fixture(scope="module")
def two_nodes():
    with cluster(lab=LAB, plain=PLAIN) as (c, nodes):
        yield c, nodes


def test_device_cells_run_only_on_the_node_with_that_device_and_unplaceable_ones_are_reported_at_once(two_nodes):
    _, nodes = two_nodes
    onnx = {"CPU": 1.0, "edgest-target:onnx": 0.001}
    job_list = [Job(i, f"d{i}", jobs.square, i, {**onnx, "device:lab": 1.0}) for i in range(3)]
    job_list += [Job(3, "host", jobs.square, 3, onnx), Job(4, "jetson", jobs.square, 4, {**onnx, "device:jetson": 1.0})]
    started: list[int] = []
    done = list(RayExecutor().run(job_list, 0, on_start=lambda job, where: started.append(job.index)))
    assert done[0].index == 4 and done[0].attempts == 0  # before anything ran: not left pending
    assert done[0].error.startswith("not placed: no live node of the Ray cluster offers device:jetson;")
    by_index = {d.index: d for d in done}
    assert {i: by_index[i].value["value"] for i in range(4)} == {0: 0, 1: 1, 2: 4, 3: 9}
    assert {by_index[i].where["node"] for i in range(3)} == {nodes["lab"].node_id}
    assert sorted(started) == [0, 1, 2, 3]


@pytest.mark.slow
def test_a_node_killed_mid_job_has_the_job_retried_on_another(two_nodes):
    c, _ = two_nodes
    spare = {name: c.add_node(num_cpus=1, resources={"chaos": 1.0}) for name in ("a", "b")}
    by_id = {n.node_id: n for n in spare.values()}
    killed: list[str] = []

    def kill_first(job, where):
        if not killed:
            killed.append(where["node"])
            c.remove_node(by_id[where["node"]], allow_graceful=False)

    done = list(RayExecutor(retries=2).run([Job(0, "chaos", jobs.nap, 3.0, {"CPU": 1.0, "chaos": 1.0})], None,
                                           on_start=kill_first))
    assert len(done) == 1 and not done[0].error, done[0].error
    assert done[0].attempts == 2 and done[0].where["node"] != killed[0]
    assert done[0].failures[0].startswith("attempt 1 on ") and killed[0][:8] in done[0].failures[0]


@pytest.mark.slow
def test_ctrl_c_cancels_the_tasks_still_running_on_the_cluster(two_nodes, tmp_path):
    marker = tmp_path / "finished"

    def interrupt(job, where):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(RayExecutor().run([Job(0, "long", jobs.nap_then_touch, (4.0, str(marker)), {"CPU": 1.0})], None,
                               on_start=interrupt))
    import ray

    waiter = ray.remote(jobs.nap).options(num_cpus=1).remote(None, 6.0)  # queues behind a cancelled task's CPU, if any
    ray.get(waiter)
    assert not marker.exists()  # the cancelled task never reached its end
