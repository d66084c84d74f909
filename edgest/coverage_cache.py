"""Op-coverage answers kept per user, keyed by what they depend on, so asking again is instant.

A target's coverage of a program depends on the program (its nodes, shapes, source lines and
weights), the target's options and precision, its toolchain's versions and the code that asks
(edgest's and the target package's). :func:`cache_key` hashes all of them; an answer is reused
only when every one is the same, so a cached answer is never stale, only absent. ``edgest check``
looks every target up before forking any child, and ``compile --coverage`` before asking its
target, so a compile after a check of the same program reuses the check's answer.

Only ``known`` answers are kept (a failure or a time-out may not happen next time). A cache that
cannot be read or written is only slower. The files are ``coverage/<key>.json`` in
:func:`edgest.inventory.cache_dir`; deleting them is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.code_fingerprint import code_fingerprint
from edgest.coverage import VERDICTS, Coverage, OpVerdict

if TYPE_CHECKING:
    import torch

    from edgest.target import Target

#: bumped when the stored answer's layout or meaning changes; older entries are then ignored
FORMAT = 1
#: answers kept at most; past it the least recently used go (a few KB to a few hundred KB each)
MAX_ENTRIES = 500


def program_fingerprint(program: torch.export.ExportedProgram) -> str:
    """A hash of everything in ``program`` a coverage answer can depend on: each node (op, arguments, value
    shape/dtype/strides, source line and module path), the signature, and every weight's bytes."""
    h = hashlib.blake2b(digest_size=20)
    for node in program.graph.nodes:
        val = node.meta.get("val")
        vals = val if isinstance(val, (list, tuple)) else (val,)
        shapes = [(tuple(v.shape), str(v.dtype), tuple(v.stride())) if hasattr(v, "stride") else repr(v) for v in vals]
        # module paths and class names: a user file's module is imported under a name that differs per process
        modules = [(fqn, str(cls).rpartition(".")[2]) for fqn, cls in (node.meta.get("nn_module_stack") or {}).values()]
        h.update(repr((node.op, node.name, str(node.target), node.args, node.kwargs, shapes, node.meta.get("stack_trace"),
                       modules)).encode())
    h.update(str(program.graph_signature).encode())
    for name, tensor in sorted({**program.state_dict, **program.constants}.items()):
        h.update(repr((name, tuple(getattr(tensor, "shape", ())), str(getattr(tensor, "dtype", "")))).encode())
        if hasattr(tensor, "detach"):
            h.update(_tensor_bytes(tensor))
    return h.hexdigest()


def _tensor_bytes(tensor: Any) -> bytes:
    """The tensor's values as bytes (a view of its memory where contiguous; bf16 and other dtypes NumPy lacks too)."""
    import torch

    t = tensor.detach().contiguous().cpu().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def cache_key(target: Target, program_fp: str, precision: str | None) -> str:
    """The key of ``target``'s answer on the program with fingerprint ``program_fp`` at ``precision``."""
    from edgest import coverage, coverage_sample

    cls = type(target)
    parts = {"format": FORMAT, "target": target.name, "class": f"{cls.__module__}.{cls.__qualname__}",
             "options": repr(sorted(target.options.items())), "precision": precision,
             "toolchain": cls.toolchain_versions(), "unavailable": cls.unavailable_reason(),
             "code": code_fingerprint(cls), "program": program_fp,
             "sampling": [coverage.SAMPLE_OPS, coverage_sample.CONTEXT_SHARE]}  # how edgest samples the graph
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=20).hexdigest()


def _folder() -> Path:
    from edgest.inventory import cache_dir

    return cache_dir() / "coverage"


def load(key: str) -> Coverage | None:
    """The answer stored under ``key``, or None (absent, unreadable, or not an answer)."""
    path = _folder() / f"{key}.json"
    try:
        data = json.loads(path.read_text())
        ops = tuple(_verdict(o) for o in data["ops"])
        answer = Coverage(_text(data["target"]), ops, _text(data["note"]), data["status"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    if answer.status != "known":
        return None
    with contextlib.suppress(OSError):
        path.touch()  # recently used: kept longest (:func:`store` drops the least recently used)
    return answer


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def _verdict(item: dict[str, Any]) -> OpVerdict:
    """One stored op verdict, checked: a file changed by hand must not reach the table as something it is not."""
    count = item["count"]
    if item["verdict"] not in VERDICTS or not isinstance(count, int) or count < 0:
        raise ValueError("not a verdict")
    return OpVerdict(_text(item["op"]), item["verdict"], count, tuple(_text(w) for w in item["where"]), _text(item["note"]))


def store(key: str, coverage: Coverage) -> None:
    """Keep a ``known`` answer under ``key``; anything else, or a folder that cannot be written, is skipped."""
    from edgest.inventory import write_cache_file

    folder = _folder()
    if coverage.status == "known" and write_cache_file(folder / f"{key}.json", json.dumps(coverage.to_dict())):
        with contextlib.suppress(OSError):
            _prune(folder)


def _prune(folder: Path) -> None:
    """Keep the :data:`MAX_ENTRIES` most recently used answers."""
    kept = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[MAX_ENTRIES:]:
        with contextlib.suppress(OSError):
            old.unlink()
