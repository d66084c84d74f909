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


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read ``path`` safely (tensors and plain values only); BadInput naming the file if it cannot be."""
    from edgest.fsio import sha256_of

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"weights file '{path}' does not exist; pass --weights (weights=) an existing .pt, .pth or .safetensors file")
    if is_safetensors(path):
        return Checkpoint(path, _read_safetensors(path), "safetensors", sha256_of(path))
    obj, dropped, container = _read_torch(path)
    return Checkpoint(path, obj, container, sha256_of(path), dropped)
