"""Output folders that edgest owns, and that appear only when complete.

Ownership: every folder edgest creates (a compile run, a bench, a bundle) holds a marker,
``.edgest.json``, naming its kind, the edgest version and the files edgest put there.
``--force`` replaces only a folder with a marker of the same kind and nothing else in it; the
working directory, its parents, home, ``/``, a git repository, a symbolic link, a folder of
another kind or with files edgest did not write are refused, and their errors never suggest
``--force``.

Staging: work happens in a hidden ``.NAME.partial-XXXX`` folder beside the destination whose
marker records the owner process; on success it is renamed into place (atomic on one
filesystem), on any failure (Ctrl-C included) it is removed. A staging folder a killed run
left behind is removed by the next run for the same destination that finds its owner gone.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from edgest.errors import BadInput
from edgest.fsio import atomic_write_text, dumps_json, pid_alive

MARKER = ".edgest.json"
Kind = Literal["run", "bench", "bundle"]
#: what an edgest folder of each kind held before markers existed
_LEGACY = {"run": ("report.json",), "bench": ("bench.json",), "bundle": ("manifest.json", "run_on_device.py")}
#: owner record of an edgest temporary folder (see :func:`temp_folder`)
_OWNER = ".edgest-owner.json"


def _start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from the owner; '' elsewhere."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def _owner() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": _start_time(pid)}


def owner_alive(record: dict[str, Any]) -> bool:
    """Whether the process that wrote ``record`` may still run (another host's is assumed alive)."""
    pid = record.get("pid")
    if not isinstance(pid, int) or record.get("host") != socket.gethostname():
        return True
    if not pid_alive(pid):
        return False
    return not record.get("started") or _start_time(pid) in ("", record["started"])


def write_marker(folder: Path, kind: Kind, files: list[str] | None = None) -> None:
    """Mark ``folder`` as an edgest folder of ``kind``; ``files``: the top-level entries edgest wrote."""
    from importlib.metadata import version

    marker = {"kind": kind, "edgest": version("edgest"), "created": datetime.now(UTC).isoformat(timespec="seconds"),
              **_owner(), **({"files": files} if files is not None else {})}
    atomic_write_text(Path(folder) / MARKER, dumps_json(marker))


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of ``folder``, or None when it has none (or an unreadable one)."""
    path = Path(folder) / MARKER
    try:
        data = json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else None
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("kind"), str) else None


def _never_replaced(out: Path) -> str:
    """Why ``out`` (which exists) must never become or be replaced by an edgest folder, or ''."""
    real, cwd = Path(os.path.realpath(out)), Path.cwd()
    if real == Path(real.anchor):
        return "is the filesystem root"
    if real == Path.home().resolve():
        return "is your home folder"
    if real == cwd:
        return "is the working directory"
    if real in cwd.parents:
        return "holds the working directory"
    if (out / ".git").exists():
        return "holds a git repository"
    return ""


#: how to ask for a replacement, on the command line and from Python
FORCE = "--force (force=True)"


def out_option(kind: Kind) -> str:
    """The option naming a ``kind`` folder, spelt for the CLI and the Python API: ``--out (out_dir=)``."""
    return f"--out ({'out' if kind == 'bundle' else 'out_dir'}=)"


def _ownership(out: Path, kind: Kind, force: bool) -> str:
    """Why edgest may not write ``kind`` to the existing, non-empty folder ``out`` (with ``force``), or ''."""
    marker = read_marker(out)
    if marker is None:
        if (out / MARKER).exists() or (out / MARKER).is_symlink():
            return (f"output folder '{out}' has a damaged {MARKER} marker (not valid JSON, or no kind), so edgest cannot "
                    f"tell what made it and does not replace it; delete the folder yourself or choose another "
                    f"{out_option(kind)}")
        if any((out / name).exists() for name in _LEGACY[kind]):
            return (f"output folder '{out}' looks like an edgest {kind} folder from an older edgest (no {MARKER} marker), "
                    f"which edgest does not replace; delete it yourself or choose another {out_option(kind)}")
        return f"output folder '{out}' already exists and is not empty, and edgest did not create it; choose another {out_option(kind)}"
    if marker["kind"] != kind:
        return f"output folder '{out}' is an edgest {marker['kind']} folder, not a {kind} folder; choose another {out_option(kind)}"
    listed = marker.get("files")
    foreign = sorted(set(os.listdir(out)) - set(listed) - {MARKER}) if isinstance(listed, list) else []
    if foreign:
        names = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        return f"output folder '{out}' holds files edgest did not write ({names}); move them away or choose another {out_option(kind)}"
    if not force and kind != "bench":
        return f"output folder '{out}' already exists and is not empty; pass {FORCE} to replace it or choose another {out_option(kind)}"
    return ""


def check_output(out: Path, force: bool = False, kind: Kind = "run") -> None:
    """Fail fast, before any work, when ``out`` cannot become (or be replaced by) an edgest ``kind`` folder."""
    out = Path(out).absolute()
    if out.is_symlink():
        raise BadInput(f"output path '{out}' is a symbolic link, which edgest does not write through; pass {out_option(kind)} a real folder path")
    if out.exists() and not out.is_dir():
        raise BadInput(f"output path '{out}' is a file; pass {out_option(kind)} a folder path")
    if out.exists():
        why = _never_replaced(out)
        if why:
            raise BadInput(f"output folder '{out}' {why}, which edgest never writes over; pass {out_option(kind)} a new folder inside it")
        if any(out.iterdir()):
            problem = _ownership(out, kind, force)
            if problem:
                raise BadInput(problem)
    existing = next(p for p in (out.parent, *out.parent.parents) if p.exists())
    if not existing.is_dir():
        raise BadInput(f"cannot create output folder '{out}': '{existing}' is a file; pass {out_option(kind)} a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write output folder '{out}': '{existing}' is not writable; pass {out_option(kind)} a writable folder")


def claim_folder(out: Path, kind: Kind) -> Path:
    """Make ``out`` an edgest ``kind`` folder that edgest writes into in place (a bench): new, empty or already marked.

    BadInput for anything else; returns the absolute path.
    """
    out = Path(out).absolute()
    check_output(out, force=False, kind=kind)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if read_marker(out) is None:
            write_marker(out, kind)
    except OSError as exc:
        raise BadInput(f"cannot write {kind} folder '{out}': {exc.strerror or exc}; pass {out_option(kind)} a writable folder") from None
    return out


def sweep_stale_staging(out: Path) -> list[Path]:
    """Remove ``.NAME.partial-*`` staging folders of ``out`` whose owner process is gone; returns them."""
    out = Path(out).absolute()
    removed = []
    for stage in out.parent.glob(f".{out.name}.partial-*"):
        marker = read_marker(stage) if stage.is_dir() and not stage.is_symlink() else None
        if marker is not None and not owner_alive(marker):
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(stage)
    return removed


def _first_missing(path: Path) -> Path | None:
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


@contextmanager
def staged_output(out: Path, force: bool = False, kind: Kind = "run") -> Iterator[Path]:
    """Yield a staging folder; on normal exit it becomes ``out``, marked as an edgest ``kind`` folder.

    BadInput when ``out`` exists and edgest may not replace it (see :func:`check_output`), or cannot be written.
    """
    out = Path(out).absolute()
    check_output(out, force, kind)
    created = _first_missing(out.parent)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_staging(out)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise BadInput(f"cannot write output folder '{out}': {exc.strerror or exc}; pass {out_option(kind)} a writable folder") from None
    try:
        write_marker(staging, kind)  # names the owner, so a later run can tell this folder is stale
        yield staging
        write_marker(staging, kind, files=sorted(n for n in os.listdir(staging) if n != MARKER))
        _move_into_place(staging, out, force, kind)
        from edgest import interrupts

        interrupts.wrote(out)  # an interrupt from here on no longer means "nothing was written"
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        full = _disk_full(exc)
        if full:
            raise BadInput(f"no space left writing '{out}' ({full}); free some space or choose another {out_option(kind)}") from None
        raise


def _move_into_place(staging: Path, out: Path, force: bool, kind: Kind) -> None:
    if out.exists() or out.is_symlink():
        if out.is_symlink() or (any(out.iterdir()) and not force):
            raise BadInput(f"output folder '{out}' was created by another run meanwhile; choose another {out_option(kind)}")
        check_output(out, force, kind)  # still a folder edgest may replace
        shutil.rmtree(out)
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the run folder is an ordinary folder
    try:
        os.replace(staging, out)
    except OSError as exc:  # another run moved its folder into place between our check and here
        raise BadInput(f"output folder '{out}' was created by another run meanwhile; choose another {out_option(kind)}") from exc


@contextmanager
def temp_folder(prefix: str) -> Iterator[Path]:
    """A private temporary folder (``prefix`` must start with ``edgest-``) that records its owner process.

    Removed on exit; folders of the same ``prefix`` whose owner is gone (a killed run) are removed on entry.
    """
    if not prefix.startswith("edgest-"):
        raise ValueError("edgest temporary folders are named edgest-*")
    for old in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            record = json.loads((old / _OWNER).read_text()) if old.is_dir() and not old.is_symlink() else None
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(record, dict) and not owner_alive(record):
            shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        (path / _OWNER).write_text(json.dumps(_owner()))
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _disk_full(exc: BaseException) -> str:
    """The ENOSPC/EDQUOT error behind ``exc`` (directly or as a cause), or ''."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return seen.strerror or "disk full"
        seen = seen.__cause__ or seen.__context__
    return ""
