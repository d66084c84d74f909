"""One writer at a time for a folder edgest writes in place (a bench's folder, which an optimize search fills too).

A run folder is staged and renamed into place whole (:mod:`edgest.outdir`), so two compiles to one
``--out`` cannot mix; a bench writes its cells, ``bench.json`` and reports straight into its folder,
so a second bench started into the same folder while the first ran recompiled the first's live cells
("holds files edgest did not write") and replaced its reports with its own. :func:`folder_lock` holds
an advisory lock (``flock``) on ``FOLDER/.edgest.lock`` for the whole bench; a second writer is refused
at once, in one line. The lock file stays (deleting it would let two writers lock two files); the
lock itself ends with its process, killed or not. :func:`claimed` claims the folder, holds the lock and,
when the block fails or is interrupted before any cell was kept, removes a folder it made itself (so
"nothing was written" is true of an early Ctrl-C).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgest.errors import BadInput
from edgest.outdir import MARKER, Kind, claim_folder

try:
    import fcntl
except ImportError:  # Windows: no flock; edgest's other locks degrade the same way
    fcntl = None  # type: ignore[assignment]

#: the lock file's name in the folder it guards
LOCK = ".edgest.lock"
#: folders this process holds the lock of (an optimize search holds it around the bench it runs)
_HELD: set[Path] = set()


@contextmanager
def folder_lock(folder: Path, what: str = "bench") -> Iterator[None]:
    """Hold ``folder``'s writer lock while the block runs (re-entrant in this process); BadInput when another
    process holds it."""
    key = Path(folder).resolve()
    if key in _HELD:
        yield
        return
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
        _HELD.add(key)
        yield
    finally:
        _HELD.discard(key)
        handle.close()


@contextmanager
def claimed(out: Path, kind: Kind = "bench") -> Iterator[Path]:
    """``out`` claimed as an edgest ``kind`` folder (:func:`edgest.outdir.claim_folder`; its absolute path) and
    locked for the block; a folder the claim made is removed again when the block ends in an error or an
    interrupt while it holds nothing but its marker, its lock and an empty ``cells/``."""
    new = not Path(out).exists()
    folder = claim_folder(out, kind)
    try:
        with folder_lock(folder, kind):
            yield folder
    except BaseException:
        if new:
            _remove_bare(folder)
        raise


def _remove_bare(folder: Path) -> None:
    cells = folder / "cells"
    kept = cells.is_symlink() or (cells.is_dir() and any(cells.iterdir()))
    if not kept and set(os.listdir(folder)) <= {MARKER, LOCK, "cells"}:
        shutil.rmtree(folder, ignore_errors=True)
