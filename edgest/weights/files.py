"""Open a weights file: a ``torch.save`` checkpoint (zip or legacy) or a ``.safetensors`` file.

What comes back is the object tree the file held, with tensors only as leaves that matter
(pickled training objects are dropped by :mod:`edgest.weights.safe_unpickle`), the container
kind and the file's sha256. Every failure is one :class:`~edgest.errors.BadInput` line naming
the file: missing, truncated, corrupt, or a pickle that would run code.
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


def is_safetensors(path: Path) -> bool:
    """By name, or by content: an 8-byte little-endian header length followed by a JSON object."""
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{" and 2 <= struct.unpack("<Q", head[:8])[0] < path.stat().st_size


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

    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(8)
        if head[:1] != b"\x80":  # every torch.save file is a zip or a pickle (protocol 2+ starts with 0x80)
            raise BadInput(f"cannot read weights '{path}': it is not a checkpoint (neither a torch.save zip or pickle, "
                           f"nor safetensors; it starts with bytes {head.hex(' ') or 'none'}); {_RESAVE}")
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
        return Checkpoint(path, _read_safetensors(path), "safetensors", sha256_of(path))
    obj, dropped, container = _read_torch(path)
    return Checkpoint(path, obj, container, sha256_of(path), dropped)
