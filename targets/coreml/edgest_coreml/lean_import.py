"""coremltools imported without the other frameworks it probes for and edgest never converts from.

``import coremltools`` runs ``coremltools._deps``, which imports every framework coremltools has a
converter or a flag for (scikit-learn, XGBoost, libsvm, TensorFlow, transformers) only to set
``_HAS_SKLEARN``, ``_HAS_XGBOOST``, ``_HAS_TF_2``, ``_HAS_HF`` and the like. edgest hands coremltools a
``torch.export`` program and nothing else, yet where those frameworks are installed (ExecuTorch and NNCF
bring scikit-learn) their imports were 2.3-3 s of coremltools' 4.2-4.8 s (``python -X importtime``;
``python bench/check_cold_costs.py`` prints the import with and without this module). The conversion and
the coverage used to hide scikit-learn and XGBoost around their own ``import coremltools``; every other
way in (the MIL reference interpreter, compression, the device runner, a test) paid them all, and every
way paid transformers (0.6-0.9 s here).

:func:`install` (called when the plugin loads) puts a one-shot finder on ``sys.meta_path``: while
``coremltools._deps`` runs, the first time in the process, an import of one of :data:`HIDDEN` that is not
already imported fails as if it were not installed. Nothing else changes: before and after, those
frameworks import as usual, and one already imported is seen by coremltools as before. In an edgest
process coremltools' own scikit-learn, XGBoost, libsvm and TensorFlow converters are therefore off
(its torch converter, the only one edgest calls, does not read those flags; ``source="auto"`` picks
torch as it does where TensorFlow is absent).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

#: top-level packages ``coremltools._deps`` imports only to set its converter flags
HIDDEN = ("sklearn", "xgboost", "libsvm", "tensorflow", "transformers")
_DEPS = "coremltools._deps"


@contextlib.contextmanager
def hidden(names: Sequence[str] = HIDDEN) -> Iterator[None]:
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
    """The path finder's loader for ``coremltools._deps``, executing it with :data:`HIDDEN` hidden."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with hidden():
            self.inner.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... as the real loader has them
        return getattr(self.inner, name)


class _DepsFinder(importlib.abc.MetaPathFinder):
    """Finds ``coremltools._deps`` once, where the path finder would, and hands it :class:`_Loader`."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != _DEPS:
            return None
        uninstall()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Hide :data:`HIDDEN` from coremltools' first import in this process (nothing once it is imported)."""
    if _DEPS not in sys.modules and not any(isinstance(f, _DepsFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _DepsFinder())


def uninstall() -> None:
    """Take the finder off ``sys.meta_path`` (it acts once; this also undoes :func:`install` before that)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _DepsFinder)]
