"""A bench gives the same cells, cache keys and reports under the pool executor as under the local one.

Real compiles of a tiny model (tens of seconds each on a 2-core host): marked slow. The same over a Ray
cluster, with a node killed mid-bench, runs by default: tests/executors/test_ray_cluster.py.
"""

from __future__ import annotations

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


def test_pool_matches_local(local_bench, tmp_path):
    doc = run_bench(*MATRIX, tmp_path / "pool", latency=FAST, samples=4, executor=get_executor("pool", jobs=2))
    normalise.assert_same_bench(tmp_path / "pool", doc, *local_bench)
    assert {c["ran_on"]["executor"] for c in doc["cells"]} == {"pool"}
    assert all(c["ran_on"]["pid"] != os.getpid() for c in doc["cells"])
    again = run_bench(*MATRIX, tmp_path / "pool", latency=FAST, samples=4, executor=get_executor("pool", jobs=2))
    assert [c["cached"] for c in again["cells"]] == [True, True]  # the pool's cells are the local cache's cells
