"""Read torch and mmengine checkpoints without importing or running anything but tensor rebuilding.

Released checkpoints carry more than tensors: an mmengine checkpoint's ``message_hub`` holds
``mmengine.logging.HistoryBuffer`` objects, its ``meta`` numpy scalars, its ``optimizer`` and
``param_schedulers`` entries whatever the trainer kept. ``torch.load(weights_only=True)`` refuses
every one of them, and ``weights_only=False`` would import mmengine and run whatever the pickle
names. This module keeps torch's own restricted unpickler (:mod:`torch._weights_only_unpickler`)
and widens it only with inert stand-ins:

* the pickle's globals are listed statically first (``torch.serialization.get_unsafe_globals_in_checkpoint``
  for zip checkpoints, torch's own opcode scanner for legacy ones), before anything is unpickled;
* a global from a module that can run code, spawn processes, import or touch files (``os``,
  ``posix``, ``subprocess``, ``builtins.eval``, ...) refuses the whole file (:class:`RefusedGlobal`);
* every other unknown global becomes a :class:`Placeholder` subclass registered through
  ``torch.serialization.safe_globals``: constructing, calling or restoring one stores nothing and
  runs nothing, so the module it names is never imported;
* after loading, placeholders are removed from the object tree and counted by name, so what is
  left holds tensors and plain Python values only.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: modules whose callables run code, spawn processes, import modules or touch files: naming one refuses the file
CODE_MODULES = frozenset({
    "os", "posix", "nt", "sys", "subprocess", "shutil", "importlib", "runpy", "pickle", "_pickle", "marshal",
    "types", "code", "codeop", "ctypes", "_ctypes", "socket", "pty", "platform", "webbrowser", "multiprocessing",
    "threading", "_thread", "signal", "pdb", "bdb", "timeit", "functools", "operator", "_operator", "io", "_io",
    "pathlib", "tempfile", "glob", "asyncio", "inspect", "ast", "pydoc", "urllib", "http", "zipimport", "site",
})
#: builtins that only name a plain type: harmless as placeholders (every other builtin, eval/exec/getattr/open/... refuses)
_PLAIN_BUILTINS = frozenset({"int", "float", "str", "bytes", "bool", "list", "dict", "tuple", "frozenset", "slice",
                             "range", "object", "NoneType"})


class RefusedGlobal(Exception):
    """The pickle names a global that could run code; ``name`` is its dotted path."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Placeholder:
    """An inert stand-in for a class or function the pickle names: it accepts any arguments and state, keeps none."""

    qualname = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<placeholder for {self.qualname}>"


@dataclass(frozen=True)
class Unpickled:
    """What a checkpoint held once placeholders are dropped, and how many of each kind were dropped."""

    obj: Any
    dropped: dict[str, int] = field(default_factory=dict)


def py3_name(name: str) -> str:
    """The Python 3 name of a global as plain pickle would resolve it (protocol 2 writes ``commands.call`` for
    ``subprocess.call``; torch's reader leaves such Python 2 names as they are)."""
    import _compat_pickle

    module, _, attr = name.rpartition(".")
    if (module, attr) in _compat_pickle.NAME_MAPPING:
        return ".".join(_compat_pickle.NAME_MAPPING[(module, attr)])
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{attr}"


def runs_code(name: str) -> bool:
    """True for a dotted global whose module can run code (``posix.system``, ``builtins.eval``, ``subprocess.Popen``),
    under its own name or its Python 3 one."""
    return any(_runs_code(n) for n in (name, py3_name(name)))


def _runs_code(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if module in ("builtins", "__builtin__"):
        return attr not in _PLAIN_BUILTINS
    return module.split(".")[0] in CODE_MODULES


def _legacy_globals(path: Path) -> list[str]:
    """Globals of a pre-1.6 ``torch.save`` file: its first four pickles (magic, protocol, sys info, object)."""
    from torch._weights_only_unpickler import get_globals_in_pkl

    found: set[str] = set()
    with open(path, "rb") as fh:
        for _ in range(4):
            found |= get_globals_in_pkl(fh)
    return sorted(found)


def unsafe_globals(path: Path) -> list[str]:
    """The globals in ``path`` that torch's safe loader does not allow by default (static scan, nothing run).

    A file the scanner cannot read (not a torch checkpoint, an unknown opcode) gives ``[]``:
    ``torch.load`` then refuses it with its own reason.
    """
    import zipfile

    import torch

    try:
        if zipfile.is_zipfile(path):
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        from torch._weights_only_unpickler import _get_allowed_globals

        return [g for g in _legacy_globals(path) if g not in _get_allowed_globals()]
    except Exception:  # noqa: BLE001 - a damaged or foreign file: torch.load below says why
        return []


def _placeholder(name: str) -> type[Placeholder]:
    return type(f"Placeholder[{name}]", (Placeholder,), {"qualname": name, "__module__": __name__})


def _strip(obj: Any, dropped: Counter[str], depth: int = 0) -> Any:
    """``obj`` with every placeholder (instance or class) removed from dicts, lists and tuples; counts them."""
    if isinstance(obj, Placeholder) or (isinstance(obj, type) and issubclass(obj, Placeholder)):
        dropped[obj.qualname] += 1
        return _DROP
    if depth > 200:  # deeper than any checkpoint; torch's unpickler builds no cycles through containers we walk
        return obj
    if isinstance(obj, dict):
        kept = {k: _strip(v, dropped, depth + 1) for k, v in obj.items() if not isinstance(k, Placeholder)}
        cleaned = type(obj)() if type(obj) is not dict else {}
        cleaned.update((k, v) for k, v in kept.items() if v is not _DROP)
        return cleaned
    if isinstance(obj, (list, tuple)):
        items = [v for v in (_strip(v, dropped, depth + 1) for v in obj) if v is not _DROP]
        return items if isinstance(obj, list) else tuple(items)
    return obj


_DROP = object()


def load_torch_file(path: Path) -> Unpickled:
    """``torch.load(path, weights_only=True)`` with unknown, harmless globals as dropped placeholders.

    Raises :class:`RefusedGlobal` (nothing unpickled) when the file names a global that could run
    code, and whatever ``torch.load`` raises for a file it cannot read.
    """
    import torch

    names = unsafe_globals(path)
    refused = [n for n in names if runs_code(n)]
    if refused:
        raise RefusedGlobal(py3_name(refused[0]))
    stand_ins = [(_placeholder(n), n) for n in names]
    with warnings.catch_warnings(), torch.serialization.safe_globals(stand_ins):
        warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": errors below say enough
        if str(path).endswith(".safetensors"):  # torch.load would hand the file to safetensors by its name
            with open(path, "rb") as fh:
                obj = torch.load(fh, map_location="cpu", weights_only=True)
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    dropped: Counter[str] = Counter()
    obj = _strip(obj, dropped)
    return Unpickled(None if obj is _DROP else obj, dict(sorted(dropped.items())))

