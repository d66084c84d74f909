"""Safe file writing: every file edgest writes appears whole or not at all.

A file is written to a temporary name in its own folder, flushed and fsync'ed, then renamed
over the destination (``os.replace``, atomic on one filesystem). A full disk, Ctrl-C or a
kill at any moment leaves the previous version of the file intact; the temporary is removed
on any error, and a temporary a killed process left behind (its pid is in the name) is
removed by the next write to the same file.

JSON written here never fails on non-finite numbers: NaN and ±Infinity are written as
``null`` ("no finite figure"), which every JSON reader accepts and edgest's readers and
schema treat as a figure that was not measured. Readers that must judge a figure
(``edgest report merge``) refuse it instead.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from edgest.errors import BadInput

#: temporaries are ``.NAME.edgest-tmp-PID-RANDOM`` beside the file they become
_TMP = ".{name}.edgest-tmp-{pid}-"
_FULL = (errno.ENOSPC, errno.EDQUOT)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (one owned by another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale(path: Path) -> None:
    """Remove temporaries of ``path`` whose writer (pid in the name) is gone."""
    pattern = re.compile(re.escape(f".{path.name}.edgest-tmp-") + r"(\d+)-\w+")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m and not pid_alive(int(m.group(1))):
            try:
                os.unlink(path.parent / name)
            except OSError:
                pass


def _write_temp(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a temporary beside ``path`` with ``write`` (flushed, fsync'ed); removed again on any error."""
    try:
        fd, name = tempfile.mkstemp(prefix=_TMP.format(name=path.name, pid=os.getpid()), dir=path.parent)
    except OSError as exc:
        _raise_if_unwritable(exc, path)
        raise
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp makes it private; the file is an ordinary one
        return tmp
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _raise_if_unwritable(exc, path)
        if isinstance(exc, Exception) and _disk_nearly_full(path.parent):  # e.g. torch.save's C++ writer: "unexpected pos"
            raise BadInput(f"no space left writing '{path}' ({type(exc).__name__} from the writer on a full disk); "
                           "free some space and run again") from exc
        raise


def _disk_nearly_full(folder: Path, margin: int = 1 << 20) -> bool:
    """Whether ``folder``'s disk has less than ``margin`` bytes free (a writer that failed there ran out of room)."""
    try:
        import shutil

        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def _raise_if_unwritable(exc: BaseException, path: Path) -> None:
    """A full disk or a folder edgest may not write becomes a one-line BadInput naming ``path``."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        raise BadInput(f"no space left writing '{path}' ({exc.strerror or 'disk full'}); free some space and run again") from exc
    if isinstance(exc, OSError) and exc.errno in _DENIED:
        raise BadInput(f"cannot write '{path}': {exc.strerror}; make its folder writable or write elsewhere") from exc


def _replace_all(temps: Mapping[Path, Path]) -> None:
    """Rename every temporary over its destination; on an error the ones not yet renamed are removed."""
    pending = dict(temps)
    try:
        for path, tmp in temps.items():
            os.replace(tmp, path)
            del pending[path]
    except BaseException as exc:
        for tmp in pending.values():
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            _raise_if_unwritable(exc, next(iter(pending)))
        raise


def atomic_write_files(files: Mapping[str | os.PathLike[str], bytes | str]) -> None:
    """Write several files so that none changes unless every one of them could be written.

    All temporaries are written first; only then are they renamed into place. ``str`` content
    is encoded as UTF-8.
    """
    temps: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            path = Path(path)
            _sweep_stale(path)
            blob = data.encode() if isinstance(data, str) else bytes(data)
            temps[path] = _write_temp(path, lambda fh, blob=blob: fh.write(blob))
    except BaseException:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        raise
    _replace_all(temps)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (BadInput naming the file when the disk is full)."""
    atomic_write_files({path: data})


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (BadInput naming the file when the disk is full)."""
    atomic_write_files({path: text})


def atomic_save(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], Any]) -> None:
    """Let ``writer`` write into an open binary file that becomes ``path`` atomically.

    For writers that take a file object: ``atomic_save(p, lambda fh: torch.save(state, fh))``,
    ``atomic_save(p, lambda fh: np.savez(fh, **arrays))`` (a file object keeps NumPy from
    appending ``.npz`` to the name).
    """
    path = Path(path)
    _sweep_stale(path)
    _replace_all({path: _write_temp(path, writer)})


def finite_json(obj: Any) -> Any:
    """``obj`` with every NaN/±Infinity float replaced by None, NumPy scalars and arrays as Python values."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "tolist") and type(obj).__module__ == "numpy":  # np.float32(nan), arrays
        return finite_json(obj.tolist())
    return obj


def dumps_json(obj: Any, indent: int | None = 2) -> str:
    """JSON text of ``obj`` ending in a newline; non-finite numbers become ``null`` instead of raising."""
    return json.dumps(finite_json(obj), indent=indent, allow_nan=False, default=str) + "\n"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes, or of a package folder (Core ML ``.mlpackage``, ...).

    A folder's digest covers its files in sorted relative-path order: path, size, then bytes of
    each, so the same tree gives the same digest on any host and a renamed file changes it.
    """
    import hashlib

    path = Path(path)
    h = hashlib.sha256()
    if path.is_file():
        files = [path]
    else:
        files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
    for f in files:
        if f is not path:
            h.update(f"{f.relative_to(path).as_posix()}\0{f.stat().st_size}\0".encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
