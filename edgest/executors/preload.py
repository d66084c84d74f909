"""What the pool's fork server imports once, before it forks the workers (:mod:`edgest.executors.pool`).

The server runs this module at start-up; it imports every module named in ``EDGEST_POOL_PRELOAD``
(comma-separated; set by the pool for the server's start only). One that fails to import is skipped: the
job that needs it reports why. Nothing here starts a thread or runs an op, so forking afterwards is safe.
"""

from __future__ import annotations

import os

from edgest.executors.pool import PRELOAD_ENV, import_all


def preload(names: str) -> None:
    """Import each comma-separated module of ``names``, skipping the ones that fail (:func:`import_all`)."""
    import_all([n for n in names.split(",") if n])
    try:
        from edgest.plugins import get_registry

        get_registry()  # the installed plugins, loaded once for every worker
    except Exception:  # noqa: BLE001, S110 - the worker loads them again and says what is wrong
        pass


preload(os.environ.get(PRELOAD_ENV, ""))
