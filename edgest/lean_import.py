"""A runtime imported without the packages it only probes for: a one-shot import hook for plugins.

Some toolchains import heavy optional packages at import time only to set flags or to work around a
platform problem (``coremltools._deps`` imports scikit-learn, XGBoost, TensorFlow and transformers;
``tvm_ffi`` imports torch first "to avoid a potential symbol conflict" seen on Windows). In a process
that never uses them, such as a check process that only runs an artifact, those imports are seconds of
every run. :func:`install` puts a finder on ``sys.meta_path`` that, the first time ``module`` is
imported in the process, executes it with ``names`` hidden: an import of one of them that is not already
imported fails as if it were not installed. Before and after, they import as usual, and one already
imported is seen as before, so a process that imported them first (a compile) is unaffected.

Used by the Core ML plugin (:mod:`edgest_coreml.lean_import`) and the TVM plugin (:mod:`edgest_tvm`).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any


@contextlib.contextmanager
def hidden(names: Sequence[str]) -> Iterator[None]:
    """While inside, importing one of ``names`` not already imported raises ``ModuleNotFoundError``."""
    blocked = [n for n in names if n not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment] - the import system's "not importable" marker
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


class _Loader(importlib.abc.Loader):
    """Wraps the path finder's loader of a module, executing it with ``names`` hidden."""

    def __init__(self, inner: Any, names: tuple[str, ...]) -> None:
        self.inner = inner
        self.names = names

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with hidden(self.names):
            self.inner.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... as the real loader has them
        return getattr(self.inner, name)


class OneShotHider(importlib.abc.MetaPathFinder):
    """Finds ``module`` once, where the path finder would, and hands it a loader hiding ``names``."""

    def __init__(self, module: str, names: Sequence[str]) -> None:
        self.module = module
        self.names = tuple(names)

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module:
            return None
        uninstall(self.module)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, self.names)
        return spec


def install(module: str, names: Sequence[str]) -> None:
    """Hide ``names`` from ``module``'s first import in this process (nothing once it is imported)."""
    if module not in sys.modules and not any(
            isinstance(f, OneShotHider) and f.module == module for f in sys.meta_path):
        sys.meta_path.insert(0, OneShotHider(module, names))


def uninstall(module: str) -> None:
    """Take ``module``'s finder off ``sys.meta_path`` (it acts once; this also undoes :func:`install` before)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not (isinstance(f, OneShotHider) and f.module == module)]
