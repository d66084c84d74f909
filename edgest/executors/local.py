"""The local executor: each job in turn, in this process (what ``edgest bench`` always did)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from edgest.executors import Done, Job, StartListener, here


class LocalExecutor:
    """Runs jobs one after another in this process; a job's exception propagates, as before executors."""

    name: ClassVar[str] = "local"
    remote: ClassVar[bool] = False

    def run(self, jobs: Sequence[Job], shared: Any = None, on_start: StartListener | None = None) -> Iterator[Done]:
        """Yield each job's :class:`Done` as soon as it has run."""
        where = here(self.name)
        for job in jobs:
            if on_start is not None:
                on_start(job, where)
            yield Done(job.index, job.fn(shared, job.arg), where=where)
