"""A real multi-node Ray cluster on loopback for the executor tests: a head with no CPUs (the driver's) and
worker nodes with different resources; skipped, with the reason, when Ray is not installed.

Kept cheap for the default test run: no dashboard, one CPU per worker node, and node failure noticed in about
a second (Ray's default health check takes ~15 s to declare a killed node dead). Every wait is bounded and
fails with what it waited for.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

ray = pytest.importorskip("ray", reason="ray not installed (pip install 'edgest[ray]'); the Ray executor tests need it")
from ray.cluster_utils import Cluster

HERE = os.path.dirname(__file__)
#: a killed node is declared dead after ~1 s (3 missed checks, 300 ms apart) instead of ~15 s
FAST_FAILURE = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300, "health_check_failure_threshold": 3}
T = TypeVar("T")


@contextmanager
def cluster(head: dict[str, Any] | None = None, **workers: dict[str, Any]) -> Iterator[tuple[Cluster, dict[str, Any]]]:
    """A head (the driver's node; ``head``: its ``num_cpus`` and ``resources``, default no CPUs) + one worker node
    per keyword (name → ``{"num_cpus": n, "resources": {...}}``); yields the cluster and the worker nodes by
    name, with this driver connected."""
    env = {"PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])}  # the nodes import tests' jobs
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **(head or {}), "include_dashboard": False,
                                                      "_system_config": FAST_FAILURE})
    try:
        nodes = {name: c.add_node(**args) for name, args in workers.items()}
        c.wait_for_nodes(timeout=60)  # raises TimeoutError naming the nodes it waited for
        ray.init(address=c.address, runtime_env={"env_vars": env}, logging_level="WARNING", include_dashboard=False)
        yield c, nodes
    finally:
        ray.shutdown()
        c.shutdown()


def within(seconds: float, what: str, fn: Callable[[], T]) -> T:
    """``fn()``, failing the test (not hanging it) when it has not returned within ``seconds``."""
    out: dict[str, Any] = {}

    def call() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            out["error"] = exc

    worker = threading.Thread(target=call, daemon=True, name=what)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"{what} did not finish within {seconds:g} s (a cell left pending on the cluster?)")
    if "error" in out:
        raise out["error"]
    return out["value"]
