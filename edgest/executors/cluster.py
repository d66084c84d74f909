"""The Ray executor: each job one Ray task, placed by resources (``--executor ray [--address ADDR]``).

Ray is optional (``pip install 'edgest[ray]'``) and imported only here, when this executor runs.

* Placement: a job's ``needs`` become the task's resources: ``CPU``, ``edgest-target:<name>`` (a node
  advertises it when that toolchain is installed there: ``edgest device serve``) and ``device:<label>``
  (one unit per device). Before anything is submitted, every job is checked against the live nodes:
  one that no node can take is reported at once, never left pending.
* Progress: each task first reports where it runs (host, node id), then its value; both stream back
  (a Ray streaming generator), so the driver shows cells starting and finishing as they do.
* Faults: a task whose worker or node dies is submitted again, up to ``retries`` times, while some live
  node can still take it; the attempts and what ended each are returned with the value. (Ray's own
  ``max_retries`` would retry too, but silently: the record must say a cell was retried.)
* Ctrl-C (or leaving the loop early) cancels every task still running, on every node.
* ``address``: ``auto`` joins the cluster this machine belongs to, else starts a Ray instance here that
  advertises this machine's installed targets (and stops it afterwards); ``ray://host:10001`` or
  ``host:6379`` join that cluster.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from edgest.errors import BadInput, TargetUnavailable
from edgest.executors import Done, Job, StartListener

RAY_MISSING = "executor 'ray' unavailable: ray not installed (pip install 'edgest[ray]')"


def import_ray() -> Any:
    """The ``ray`` module; TargetUnavailable (one line, naming the install) when it is not installed."""
    try:
        import ray
    except ImportError:
        raise TargetUnavailable(RAY_MISSING) from None
    return ray


def _streamed(fn: Callable[[Any, Any], Any], shared: Any, arg: Any) -> Iterator[Any]:
    """The task: where it runs, then ``fn(shared, arg)``."""
    import ray

    yield {"executor": "ray", "host": socket.gethostname(), "pid": os.getpid(),
           "node": ray.get_runtime_context().get_node_id()}
    yield fn(shared, arg)


def installed_targets() -> list[str]:
    """The targets whose toolchain is installed here (what this node may advertise)."""
    from edgest.plugins import get_registry

    return sorted(n for n, cls in get_registry().targets.items() if cls.unavailable_reason() is None)


def node_resources(labels: Sequence[str] = ()) -> dict[str, float]:
    """The custom resources this machine offers: one ``edgest-target:<name>`` per installed target, one
    ``device:<label>`` per device label."""
    return {**{f"edgest-target:{t}": 1.0 for t in installed_targets()}, **{f"device:{d}": 1.0 for d in labels}}


def unplaceable(needs: dict[str, float], nodes: list[dict[str, Any]]) -> str:
    """Why no live node can take a job needing ``needs`` ('' when one can)."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive")]
    if any(all(res.get(k, 0.0) >= v for k, v in needs.items()) for res in alive):
        return ""
    missing = [k for k, v in needs.items() if not any(res.get(k, 0.0) >= v for res in alive)]
    what = ", ".join(missing) if missing else f"{', '.join(needs)} together"
    return (f"not placed: no live node of the Ray cluster offers {what}; on a host that has it run "
            "`edgest device serve --labels LABEL` (or `ray start --resources ...`, docs/executors.md)")


_SYSTEM_ERRORS = ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "LocalRayletDiedError", "RaySystemError",
                  "OwnerDiedError", "ObjectReconstructionFailedError")


class RayExecutor:
    """Runs each job as a Ray task, as the module docstring says."""

    name: ClassVar[str] = "ray"
    remote: ClassVar[bool] = True

    def __init__(self, address: str = "auto", retries: int = 2, store: Path | None = None) -> None:
        if retries < 0:
            raise BadInput(f"retries {retries} must be 0 or more")
        self.address, self.retries, self.store = address, retries, store
        self.ray = import_ray()
        check_reachable(address)  # before any work: ray.init retries an unreachable address for minutes, warning

    def _connect(self) -> bool:
        """Join (or start) the cluster; whether this call did, so that it disconnects afterwards."""
        ray = self.ray
        if ray.is_initialized():
            return False
        quiet = {"logging_level": "WARNING", "include_dashboard": False}
        try:
            ray.init(address=self.address, **quiet)
        except ConnectionError:
            if self.address != "auto":
                raise BadInput(f"cannot reach a Ray cluster at '{self.address}'; start one (ray start --head) or "
                               "give --address auto") from None
            ray.init(resources=node_resources(), **quiet)  # no cluster here: a one-machine one, for this bench
        return True

    def run(self, jobs: Sequence[Job], shared: Any = None, on_start: StartListener | None = None) -> Iterator[Done]:
        """Yield each job's :class:`Done` as it completes; cancel what is left when the loop ends early."""
        if not jobs:
            return
        ray = self.ray
        joined = self._connect()
        task = ray.remote(_streamed)
        pending: dict[Any, tuple[Job, int, tuple[str, ...], dict[str, Any] | None]] = {}
        try:
            shared_ref = ray.put(shared)  # once, in the object store: every task reads the same copy
            nodes = ray.nodes()
            for job in jobs:
                why = unplaceable(job.needs, nodes)
                if why:
                    yield Done(job.index, error=why, where={"executor": "ray"}, attempts=0)
                else:
                    pending[self._submit(task, job, shared_ref)] = (job, 1, (), None)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for gen in ready:
                    yield from self._step(gen, pending, task, shared_ref, on_start)
        finally:
            for gen in pending:  # Ctrl-C, or the caller stopped early: nothing keeps running on the cluster
                try:
                    ray.cancel(gen, force=True)
                except Exception:  # noqa: BLE001, S110 - already finished or its node is gone
                    pass
            if joined:
                ray.shutdown()

    def _submit(self, task: Any, job: Job, shared_ref: Any) -> Any:
        needs = dict(job.needs)
        cpus = needs.pop("CPU", 1.0)
        return task.options(num_returns="streaming", max_retries=0, num_cpus=cpus, resources=needs,
                            name=f"edgest {job.label}").remote(job.fn, shared_ref, job.arg)

    def _step(self, gen: Any, pending: dict[Any, Any], task: Any, shared_ref: Any,
              on_start: StartListener | None) -> Iterator[Done]:
        """Take the next item of one task: its start (tell ``on_start``), its value, or its failure."""
        ray = self.ray
        job, attempt, failures, where = pending.pop(gen)
        try:
            item = ray.get(next(gen))
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - sorted below: a dead worker/node is retried, a job's error is its outcome
            if type(exc).__name__ not in _SYSTEM_ERRORS:  # incl. a task cancelled from outside: not run again
                cause = getattr(exc, "cause", None) or exc
                yield Done(job.index, error=f"{type(cause).__name__}: {cause}", where=where or {}, attempts=attempt,
                           failures=failures)
                return
            failures = (*failures, f"attempt {attempt} on {_where_text(where)}: {type(exc).__name__}")
            why = unplaceable(job.needs, ray.nodes())
            if attempt > self.retries or why:
                reason = why or f"gave up after {attempt} attempts"
                yield Done(job.index, error=f"not finished: {failures[-1]}; {reason}", where=where or {},
                           attempts=attempt, failures=failures)
                return
            pending[self._submit(task, job, shared_ref)] = (job, attempt + 1, failures, None)
            return
        if where is None:  # the first item: where the task runs
            pending[gen] = (job, attempt, failures, item)
            if on_start is not None:
                on_start(job, item)
            return
        yield Done(job.index, item, where=where, attempts=attempt, failures=failures)


def check_reachable(address: str, timeout_s: float = 5.0,
                    fix: str = "start one there (ray start --head) or give --address auto") -> None:
    """BadInput, within ``timeout_s``, when nothing answers at ``address`` (``host:port`` or ``ray://host:port``);
    ``auto`` and ``local`` are Ray's to resolve. ``fix`` ends the line of an address nothing answers at."""
    import socket

    if address in ("auto", "local", ""):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise BadInput(f"--address '{address}' is not host:port or ray://host:port; e.g. 10.0.0.5:6379, or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise BadInput(f"cannot reach a Ray cluster at '{address}' ({exc.strerror or exc}); {fix}") from None


def _where_text(where: dict[str, Any] | None) -> str:
    if not where:
        return "a node (not started)"
    return f"{where.get('host')} (node {str(where.get('node', ''))[:8]})"
