"""Output folders that appear only when complete.

Work happens in a hidden staging folder beside the destination; on success it is renamed
into place (atomic on one filesystem), on any failure (Ctrl-C included) it is removed.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgest.errors import BadInput


def _first_missing(path: Path) -> Path | None:
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


def check_output(out: Path, force: bool = False) -> None:
    """Fail fast, before any work, when ``out`` cannot become the run folder."""
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise BadInput(f"output path '{out}' is a file; pass --out a folder path")
    if out.exists() and any(out.iterdir()) and not force:
        raise BadInput(f"output folder '{out}' already exists and is not empty; pass --force to replace it or choose another --out")
    existing = next(p for p in (out.parent, *out.parent.parents) if p.exists())
    if not existing.is_dir():
        raise BadInput(f"cannot create output folder '{out}': '{existing}' is a file; pass --out a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write output folder '{out}': '{existing}' is not writable; pass --out a writable folder")


@contextmanager
def staged_output(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a staging folder; on normal exit it becomes ``out``.

    BadInput when ``out`` exists and is not empty (unless ``force``), or cannot be written.
    """
    out = Path(out).absolute()
    check_output(out, force)
    created = _first_missing(out.parent)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise BadInput(f"cannot write output folder '{out}': {exc.strerror or exc}; pass --out a writable folder") from None
    try:
        yield staging
        if out.exists():
            if any(out.iterdir()) and not force:
                raise BadInput(f"output folder '{out}' was created by another run meanwhile; choose another --out")
            shutil.rmtree(out)
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the run folder is an ordinary folder
        try:
            os.replace(staging, out)
        except OSError as exc:  # another run moved its folder into place between our check and here
            raise BadInput(f"output folder '{out}' was created by another run meanwhile; choose another --out") from exc
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        full = _disk_full(exc)
        if full:
            raise BadInput(f"no space left writing '{out}' ({full}); free some space or choose another --out") from None
        raise


def _disk_full(exc: BaseException) -> str:
    """The ENOSPC/EDQUOT error behind ``exc`` (directly or as a cause), or ''."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return seen.strerror or "disk full"
        seen = seen.__cause__ or seen.__context__
    return ""
