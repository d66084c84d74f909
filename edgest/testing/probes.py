"""Probes the conformance kits share: a plugin manager for one plugin, fresh-interpreter imports,
who raised an exception, and whether an unavailable target is really just misspelt.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import json
import linecache
import os
import pkgutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from edgest.plugins import PluginManager, Registry, new_plugin_manager

#: what any plugin module may import at its top: edgest's own light dependencies
LIGHT = frozenset({"edgest", "pluggy", "click", "rich"})


def kit_manager(plugin: str | None) -> PluginManager:
    """The installed plugins (``plugin`` None), or the built-ins plus the module ``plugin`` added as a plugin.

    The second way tests a plugin without installing its distribution. A plugin that edgest
    skips fails the test here, with the reason edgest gives.
    """
    if plugin is None:
        return new_plugin_manager()
    pm = new_plugin_manager(entry_points=False)
    module_name, _, attr = plugin.partition(":")
    obj: Any = importlib.import_module(module_name)
    if attr:
        obj = getattr(obj, attr)
    problem = pm.add(obj, module_name)
    if problem:
        pytest.fail(f"edgest skips plugin '{plugin}': {problem}")
    return pm


def owner_module(pm: PluginManager, kind: str, name: str) -> str:
    """The module (``pkg.mod``) of the plugin that registered ``kind`` ``name``."""
    owner = pm.registry.owners[(kind, name)]
    return pm.infos[owner].module.partition(":")[0]


def imported_by(modules: Sequence[str], watch: Sequence[str]) -> list[str]:
    """Which of ``watch`` a fresh interpreter has in ``sys.modules`` after importing ``modules``."""
    code = ("import importlib, json, sys\n"
            f"for m in {list(modules)!r}: importlib.import_module(m)\n"
            f"print(json.dumps(sorted(w for w in {sorted(set(watch))!r} if w in sys.modules)))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        pytest.fail(f"importing {', '.join(modules)} in a fresh interpreter failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def package_dir(module: str) -> Path | None:
    """The folder of ``module``'s top-level package (the plugin's own code), or None."""
    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin).resolve()
    return origin.parent if origin.name == "__init__.py" else origin


def own_raise(exc: BaseException, root: Path | None) -> str | None:
    """``file:line`` when ``exc`` was raised by a ``raise`` statement in the code under ``root``, else None.

    An error a runtime raises passes through; an error the plugin's own code chose to raise is
    its own, and must then be one of edgest's kinds.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or root is None:
        return None
    path = Path(tb.tb_frame.f_code.co_filename).resolve()
    if root != path and root not in path.parents:
        return None
    line = linecache.getline(str(path), tb.tb_lineno).strip()
    return f"{path.name}:{tb.tb_lineno}" if line.startswith("raise") else None


def _importable_names() -> set[str]:
    names = set(importlib.metadata.packages_distributions()) | set(sys.builtin_module_names)
    names |= {m.name for m in pkgutil.iter_modules()}
    return names | set(getattr(sys, "stdlib_module_names", ()))


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a dotted name whose parent is missing
        return False


def requires_typo(requires: Sequence[str], toolchain: Sequence[str]) -> str | None:
    """Why the modules in ``requires`` that cannot be found look like a mistake rather than a missing install.

    A mistake: every distribution in ``toolchain`` is installed (so the runtime is here and
    ``requires`` names it wrongly), or a missing name is one edit away from an importable one.
    """
    missing = [m for m in requires if not _findable(m)]
    if not missing:
        return None
    if toolchain and all(_installed(d) for d in toolchain):
        return (f"requires names {', '.join(missing)}, which cannot be imported, although its toolchain "
                f"({', '.join(toolchain)}) is installed: is requires misspelt?")
    names = {n for n in _importable_names() if not n.startswith("edgest")}  # a plugin's name is not its runtime's
    for m in missing:
        close = difflib.get_close_matches(m.split(".")[0], names, n=1, cutoff=0.8)
        if close:
            return f"requires names '{m}', which cannot be imported; did you mean '{close[0]}'?"
    return None


_STANDALONE = """
import importlib.abc, importlib.util, inspect, json, sys
blocked = {blocked!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{{name}} is not on a device (only NumPy and the runtime are)")
        return None

sys.meta_path.insert(0, Block())
spec = importlib.util.spec_from_file_location("edgest_device_runner", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
load = getattr(module, "load", None)
params = list(inspect.signature(load).parameters) if callable(load) else None
print(json.dumps(params))
"""


def standalone_device_runner(module: str) -> tuple[str | None, list[str] | None]:
    """Load ``module``'s file alone, as a bundle does, with edgest and the plugin's package unimportable.

    Returns (the problem, or None; the parameter names of its ``load``, or None when it has none).
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py") or spec.submodule_search_locations:
        return f"device_runner '{module}' is not a one-file Python module", None
    blocked = sorted({"edgest", module.split(".")[0]})
    code = _STANDALONE.format(blocked=blocked, path=spec.origin)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"device_runner '{module}' cannot be imported on its own, as in a bundle: {last}", None
    return None, json.loads(proc.stdout.strip().splitlines()[-1])


class KitFixtures:
    """What every conformance kit shares: the plugin under test (``plugin``: a module path, for a plugin that is not
    installed) and class-scoped fixtures for its plugin manager and registry."""

    plugin: ClassVar[str | None] = None

    @pytest.fixture(scope="class")
    @classmethod
    def plugin_manager(cls) -> PluginManager:
        return kit_manager(cls.plugin)

    @pytest.fixture(scope="class")
    @classmethod
    def registry(cls, plugin_manager: PluginManager) -> Registry:
        return plugin_manager.registry
