"""A real multi-node Ray cluster on loopback for the executor tests: a head with no CPUs (the driver's) and
two workers with different resources; skipped, with the reason, when Ray is not installed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="ray not installed (pip install 'edgest[ray]'); the Ray executor tests need it")
from ray.cluster_utils import Cluster

HERE = os.path.dirname(__file__)


@contextmanager
def cluster(**workers: dict[str, Any]) -> Iterator[tuple[Cluster, dict[str, Any]]]:
    """Head + one worker per keyword (name → ``{"num_cpus": n, "resources": {...}}``); yields the cluster and
    the worker nodes by name, with this driver connected."""
    env = {"PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])}  # the nodes import tests' jobs
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = {name: c.add_node(**args) for name, args in workers.items()}
    c.wait_for_nodes()
    ray.init(address=c.address, runtime_env={"env_vars": env}, logging_level="WARNING")
    try:
        yield c, nodes
    finally:
        ray.shutdown()
        c.shutdown()
