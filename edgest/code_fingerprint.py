"""A hash of the code that decides an outcome: edgest's own and the packages of the plugins involved.

Caches keyed on versions alone go stale where code changes and versions do not: an editable
install, a plugin author editing a target, a checkout moved to another commit. :func:`code_fingerprint`
hashes the ``.py`` files of edgest and of each package (or lone module file) that defines the given
classes, functions or ``"module:function"`` names, so a cache keyed on it is never stale, only absent.
Each folder is read once per process.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import cache
from pathlib import Path
from typing import Any


@cache
def _source_hash(root: str) -> str:
    """A hash of every ``.py`` file under ``root`` (a package folder) or of ``root`` itself (a module file)."""
    path = Path(root)
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    h = hashlib.blake2b(digest_size=20)
    for f in files:
        try:
            h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + f.read_bytes())
        except OSError:
            h.update(f.name.encode())
    return h.hexdigest()


def code_root(owner: Any) -> Path | None:
    """The folder of the top-level package defining ``owner`` (a class, a function, or a ``"module[:name]"``
    string), or its module file when that is not in a package; None where there is no file (built-ins, a
    module that cannot be found). ``find_spec`` answers from ``sys.modules`` for an imported module, so a user's
    model file, imported under a made-up name no finder knows, is found too."""
    module = owner if isinstance(owner, str) else getattr(owner, "__module__", None)
    if not module:
        return None
    top = module.partition(":")[0].partition(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None


def code_fingerprint(*owners: Any) -> str:
    """A hash of edgest's code and of the code of the package (or module file) defining each of ``owners``."""
    import edgest

    roots = [Path(edgest.__file__).parent]
    for owner in owners:
        root = code_root(owner)
        if root is not None and root not in roots:
            roots.append(root)
    return hashlib.blake2b("".join(_source_hash(str(r)) for r in roots).encode(), digest_size=20).hexdigest()
