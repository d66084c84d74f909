"""A bench gives the same cells, cache keys and reports whichever executor runs it (local, pool, a Ray cluster).

Real compiles of a tiny model (tens of seconds each on a 2-core host): marked slow.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import normalise

from edgest.bench import run_bench
from edgest.checks.latency import LatencyConfig
from edgest.executors import get_executor

pytestmark = pytest.mark.slow
FAST = LatencyConfig(warmup=1, min_runs=5, min_seconds=0.0)
MATRIX = (["lmuformer_tiny"], ["onnx"], ["fp32"])  # + the eager reference bench adds: 2 cells


@pytest.fixture(scope="module")
def local_bench(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("local")
    return out, run_bench(*MATRIX, out, latency=FAST, samples=4)


def _same_as_local(local_bench, out: Path, doc: dict) -> None:
    lout, ldoc = local_bench
    assert [normalise.record(c) for c in doc["cells"]] == [normalise.record(c) for c in ldoc["cells"]]
    assert {k: v for k, v in doc["settings"].items()} == ldoc["settings"]
    for cell in ldoc["cells"]:
        assert normalise.run_report(out / cell["run_dir"]) == normalise.run_report(lout / cell["run_dir"])
        assert (out / cell["run_dir"] / "cell.key").read_text() == cell["key"]
    assert json.loads((out / "bench.json").read_text())["cells"][0]["key"] == ldoc["cells"][0]["key"]


def test_pool_matches_local(local_bench, tmp_path):
    doc = run_bench(*MATRIX, tmp_path / "pool", latency=FAST, samples=4, executor=get_executor("pool", jobs=2))
    _same_as_local(local_bench, tmp_path / "pool", doc)
    assert {c["ran_on"]["executor"] for c in doc["cells"]} == {"pool"}
    assert all(c["ran_on"]["pid"] != os.getpid() for c in doc["cells"])
    again = run_bench(*MATRIX, tmp_path / "pool", latency=FAST, samples=4, executor=get_executor("pool", jobs=2))
    assert [c["cached"] for c in again["cells"]] == [True, True]  # the pool's cells are the local cache's cells


def test_ray_cluster_matches_local_and_places_device_cells_on_their_device(local_bench, tmp_path):
    from ray_cluster import cluster

    targets = {"edgest-target:onnx": 1.0, "edgest-target:eager": 1.0}
    with cluster(lab={"num_cpus": 1, "resources": {**targets, "device:lab": 1.0}},
                 plain={"num_cpus": 1, "resources": targets}) as (_, nodes):
        out = tmp_path / "ray"
        doc = run_bench(*MATRIX, out, latency=FAST, samples=4, executor=get_executor("ray"), devices={"onnx": "lab"})
        _same_as_local(local_bench, out, doc)
        onnx, eager = doc["cells"]
        assert onnx["ran_on"]["node"] == nodes["lab"].node_id and onnx["ran_on"]["attempts"] == 1
        assert eager["ran_on"]["executor"] == "ray"
        again = run_bench(*MATRIX, out, latency=FAST, samples=4, executor=get_executor("ray"), devices={"onnx": "lab"})
        assert [c["cached"] for c in again["cells"]] == [True, True]  # the key a node computes finds the driver's copy


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


def test_a_worker_killed_mid_bench_has_its_cell_retried_and_the_bench_completes(local_bench, tmp_path):
    from ray_cluster import cluster

    targets = {"edgest-target:onnx": 1.0, "edgest-target:eager": 1.0}
    with cluster(a={"num_cpus": 1, "resources": targets}, b={"num_cpus": 1, "resources": targets}) as (c, _):
        chaos = _KillFirstNode(c, get_executor("ray"))
        doc = run_bench(*MATRIX, tmp_path / "chaos", latency=FAST, samples=4, executor=chaos)
    _same_as_local(local_bench, tmp_path / "chaos", doc)
    retried = [cell for cell in doc["cells"] if cell["ran_on"]["attempts"] == 2]
    assert len(retried) == 1 and retried[0]["status"] == "passed"
    assert chaos.killed[0][:8] in retried[0]["ran_on"]["failures"][0] and retried[0]["ran_on"]["node"] != chaos.killed[0]
