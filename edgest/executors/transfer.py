"""Files that travel between machines by content (sha256): run folders back to the driver, weights out to nodes.

A small file travels inline, as bytes inside the job's argument or value, which Ray carries through
its object store. A file over ``inline_limit`` goes to the shared store (a folder every node and the
driver mount at the same path, e.g. NFS or a bucket mounted with s3fs/gcsfuse) as ``<store>/<sha[:2]>/<sha>``
and travels as that name. Every file is checked against its sha256 where it lands; a mismatch is an
error, never a silently different artifact. A node keeps fetched files under
``~/.cache/edgest/blobs/<sha256>``, so a weights file is written there once per node, not per cell.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgest.errors import BadInput
from edgest.fsio import atomic_write_bytes, sha256_of

#: files up to this size travel inline (the object store); larger ones through the shared store when there is one
INLINE_LIMIT = 64 << 20


@dataclass(frozen=True)
class Blob:
    """One file's content: ``data`` inline, or ``stored`` (its path in the shared store)."""

    sha256: str
    size: int
    data: bytes | None = None
    stored: str = ""


def pack(path: Path, store: Path | None = None, inline_limit: int = INLINE_LIMIT) -> Blob:
    """``path`` as a :class:`Blob`: inline when small or when there is no shared store, else copied into ``store``."""
    size = path.stat().st_size
    if store is None or size <= inline_limit:
        data = path.read_bytes()
        return Blob(hashlib.sha256(data).hexdigest(), size, data=data)
    sha = sha256_of(path)
    dest = Path(store) / sha[:2] / sha
    if not dest.is_file() or dest.stat().st_size != size:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{sha}.{os.getpid()}.partial")
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
    return Blob(sha, size, stored=str(dest))


def unpack(blob: Blob, dest: Path) -> Path:
    """Write ``blob`` at ``dest`` (atomically) and check its sha256; BadInput when the content differs."""
    if blob.data is not None:
        if hashlib.sha256(blob.data).hexdigest() != blob.sha256:
            raise BadInput(f"file for '{dest.name}' arrived damaged (sha256 differs); run the bench again")
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, blob.data)
        return dest
    src = Path(blob.stored)
    if not src.is_file():
        raise BadInput(f"shared store file '{src}' is missing here; mount the shared store (EDGEST_SHARED_STORE) at the "
                       "same path on every node")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    shutil.copyfile(src, tmp)
    if sha256_of(tmp) != blob.sha256:
        tmp.unlink(missing_ok=True)
        raise BadInput(f"shared store file '{src}' differs from its sha256; remove it and run the bench again")
    os.replace(tmp, dest)
    return dest


def cached(blob: Blob, cache: Path | None = None) -> Path:
    """``blob`` as a file in this node's blob cache (fetched once, then reused); its path."""
    cache = cache or Path(os.environ.get("EDGEST_BLOB_CACHE") or Path.home() / ".cache" / "edgest" / "blobs")
    dest = cache / blob.sha256
    if dest.is_file() and dest.stat().st_size == blob.size:
        return dest
    return unpack(blob, dest)


def pack_folder(folder: Path, store: Path | None = None, inline_limit: int = INLINE_LIMIT) -> dict[str, Blob]:
    """Every file under ``folder`` by its path relative to it (a package folder's files one by one)."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        out[path.relative_to(folder).as_posix()] = pack(path, store, inline_limit)
    return out


def unpack_folder(files: dict[str, Blob], dest: Path) -> None:
    """Write ``pack_folder``'s files under ``dest``; a name that would leave ``dest`` is refused."""
    root = dest.resolve()
    for rel, blob in files.items():
        target = (dest / rel).resolve()
        if root not in target.parents:
            raise BadInput(f"refusing file '{rel}' from a node: it is not inside the run folder")
        unpack(blob, target)
