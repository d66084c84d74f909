"""Open a weights file: a ``torch.save`` checkpoint (zip or legacy) or a ``.safetensors`` file.

What comes back is the object tree the file held, with tensors only as leaves that matter
(pickled training objects are dropped by :mod:`edgest.weights.safe_unpickle`), the container
kind and the file's sha256. Every failure is one :class:`~edgest.errors.BadInput` line naming
the file: missing, truncated, corrupt, a NumPy file, or a pickle that would run code. The container
is told by content, not by name: a torch.save file named ``.safetensors`` is read as a torch file
(and the record notes the misleading name).
"""

from __future__ import annotations

import json
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgest.errors import BadInput

_RESAVE = "save a state_dict with torch.save(model.state_dict(), path)"


@dataclass(frozen=True)
class Checkpoint:
    """A file's contents: ``obj`` (dicts, lists, tensors, plain values), its container, sha256, dropped objects."""

    path: Path
    obj: Any
    container: str
    sha256: str
    dropped: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _torch_head(head: bytes) -> bool:
    """True when ``head`` starts a torch.save file: a zip, or a pickle of protocol 2 to 5 (not a safetensors header)."""
    return head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
                                          and head[8:9] != b"{")


def is_safetensors(path: Path) -> bool:
    """By content (an 8-byte little-endian header length followed by a JSON object), else by name unless the
    content is a torch.save zip or pickle (a checkpoint named ``.safetensors`` is read as what it is)."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) == 9 and head[8:9] == b"{" and 2 <= struct.unpack("<Q", head[:8])[0] < path.stat().st_size:
        return True
    return path.suffix == ".safetensors" and not _torch_head(head)


def _numpy_problem(path: Path, head: bytes) -> str:
    """Why ``path`` is a NumPy file rather than a checkpoint (``.npy`` array, ``.npz`` archive) and the fix, or ``""``."""
    import zipfile

    if head[:6] == b"\x93NUMPY":
        return f"is a NumPy array (.npy), not a checkpoint; {_RESAVE}"
    if head[:4] != b"PK\x03\x04":
        return ""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return ""
    if names and all(n.endswith(".npy") and "/" not in n for n in names):
        return ("is a NumPy archive (.npz), not a checkpoint; if its arrays are named like the model's state_dict, "
                f"convert it: torch.save({{k: torch.from_numpy(v) for k, v in numpy.load('{path.name}').items()}}, "
                f"'{path.stem}.pt')")
    return ""


def _safetensors_problem(path: Path) -> str:
    """Why ``path`` is not a whole safetensors file (truncated, bad header), or ``""``."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"it is truncated ({size} bytes, shorter than the 8-byte header length)"
        n = struct.unpack("<Q", head)[0]
        if 8 + n > size:
            return f"it is truncated (its header says {n} bytes of header, the file has {size} bytes in all)"
        try:
            header = json.loads(fh.read(n))
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            return "its header is not a safetensors header (corrupt or another format)"
    if 8 + n + end > size:
        return f"it is truncated (its header describes {8 + n + end} bytes, the file has {size})"
    return ""


def _read_safetensors(path: Path) -> Any:
    problem = _safetensors_problem(path)
    if problem:
        raise BadInput(f"cannot read weights '{path}' as safetensors: {problem}; download or export it again")
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - the library's own reason, on one line
        from edgest.capture import first_line

        raise BadInput(f"cannot read weights '{path}' as safetensors: {first_line(exc)[:200]}; download or export it again") from None


def _read_torch(path: Path) -> tuple[Any, dict[str, int], str]:
    import zipfile

    from edgest.capture import first_line
    from edgest.weights.safe_unpickle import RefusedGlobal, load_torch_file

    with open(path, "rb") as f:
        head = f.read(9)
    numpy = _numpy_problem(path, head)
    if numpy:
        raise BadInput(f"weights '{path}' {numpy}")
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":  # a torch.save file is a zip or a pickle (0x80: protocol 2+)
        raise BadInput(f"cannot read weights '{path}': it is not a checkpoint (neither a torch.save zip or pickle, "
                       f"nor safetensors; it starts with bytes {head[:8].hex(' ') or 'none'}); {_RESAVE}")
    try:
        got = load_torch_file(path)
    except RefusedGlobal as exc:
        raise BadInput(f"cannot read weights '{path}': its pickle calls {exc.name}, which could run code, so edgest refuses "
                       f"it; load only tensors from a copy you trust and {_RESAVE}") from None
    except pickle.UnpicklingError as exc:
        blocked = "GLOBAL" in str(exc) or "global" in str(exc)
        what = ("it holds Python objects other than tensors, which the safe loader (weights_only=True) refuses"
                if blocked else "it is not a file written by torch.save (corrupt or another format)")
        raise BadInput(f"cannot read weights '{path}': {what}; {_RESAVE}") from None
    except Exception as exc:  # noqa: BLE001 - corrupt zip, truncated file, ...
        raise BadInput(f"cannot read weights '{path}': {first_line(exc)[:200]}; {_RESAVE}") from None
    return got.obj, got.dropped, "torch zip" if zipfile.is_zipfile(path) else "torch legacy"


def why_not_a_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a weights file ("does not exist", "is a folder", "is a pipe or device",
    "is empty", "cannot be read: ..."), or None when it is a readable, non-empty regular file."""
    import os
    import stat

    if not str(path).strip():
        return "is an empty name"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder"
    if not stat.S_ISREG(st.st_mode):
        return "is a pipe or device, not a file"
    if st.st_size == 0:
        return "is empty (0 bytes)"
    if not os.access(path, os.R_OK):
        return "cannot be read: permission denied"
    return None


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read ``path`` safely (tensors and plain values only); BadInput naming the file if it cannot be."""
    from edgest.fsio import sha256_of

    why = why_not_a_file(path)
    path = Path(path)
    if why:
        raise BadInput(f"weights file '{path}' {why}; pass --weights (weights=) a .pt, .pth or .safetensors file")
    if is_safetensors(path):
        return Checkpoint(path, _read_safetensors(path), "safetensors", sha256_of(path), notes=_name_notes(path, "safetensors"))
    obj, dropped, container = _read_torch(path)
    return Checkpoint(path, obj, container, sha256_of(path), dropped, _name_notes(path, container))


def _name_notes(path: Path, container: str) -> tuple[str, ...]:
    """A note when the file's name says one container and its content is the other (it is read by content)."""
    named = {".safetensors": "safetensors", ".pt": "torch", ".pth": "torch", ".ckpt": "torch"}.get(path.suffix.lower())
    if named is None or container.startswith(named):
        return ()
    return (f"'{path.name}' holds a {container} file, not {named} as its name says; read by its content",)
