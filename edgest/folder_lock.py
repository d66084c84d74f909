"""One writer at a time for a folder edgest writes in place (a bench's folder, which an optimize search fills too).

A run folder is staged and renamed into place whole (:mod:`edgest.outdir`), so two compiles to one
``--out`` cannot mix; a bench writes its cells, ``bench.json`` and reports straight into its folder,
so a second bench started into the same folder while the first ran recompiled the first's live cells
("holds files edgest did not write") and replaced its reports with its own. :func:`folder_lock` holds
an advisory lock (``flock``) on ``FOLDER/.edgest.lock`` for the whole bench; a second writer is refused
at once, in one line. The lock file stays (deleting it would let two writers lock two files); the
lock itself ends with its process, killed or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgest.errors import BadInput

try:
    import fcntl
except ImportError:  # Windows: no flock; edgest's other locks degrade the same way
    fcntl = None  # type: ignore[assignment]

#: the lock file's name in the folder it guards
LOCK = ".edgest.lock"


@contextmanager
def folder_lock(folder: Path, what: str = "bench") -> Iterator[None]:
    """Hold ``folder``'s writer lock while the block runs; BadInput when another process holds it."""
    try:
        handle = open(Path(folder) / LOCK, "a+b")  # noqa: SIM115 - held for the block's life
    except OSError as exc:
        raise BadInput(f"cannot write {what} folder '{folder}': {exc.strerror or exc}; pass --out a writable folder") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BadInput(f"{what} folder '{folder}' is being written by another edgest process right now; wait "
                               "for it to finish, or pass --out another folder") from None
        yield
    finally:
        handle.close()
