"""Plugin loading and the registry of models, passes and targets.

Built-in plugins load first, then entry points of group ``edgest``. A plugin that fails to
import is reported and skipped, so one broken plugin never breaks the CLI.

Environment:
- ``EDGEST_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points (except those named below).
- ``EDGEST_LOAD_PLUGINS=a,b``: load only the entry points named ``a`` and ``b``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from edgest import hookspecs
from edgest.errors import PluginError, UnknownName

if TYPE_CHECKING:
    from edgest.model import ModelEntry
    from edgest.passes.base import Pass
    from edgest.target import Target

ENTRY_POINT_GROUP = "edgest"
DEFAULT_PLUGINS: tuple[str, ...] = ("edgest.targets.eager", "edgest.passes.builtin")
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin: its name, where it came from and its version."""

    name: str
    module: str
    distribution: str = "edgest"
    version: str = ""


@dataclass
class Registry:
    """Everything the loaded plugins registered, keyed by name, with the owning plugin."""

    models: dict[str, ModelEntry] = field(default_factory=dict)
    passes: dict[str, type[Pass]] = field(default_factory=dict)
    targets: dict[str, type[Target]] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    def model(self, name: str) -> ModelEntry:
        """The model called ``name``; UnknownName lists the alternatives."""
        if name not in self.models:
            raise UnknownName("model", name, self.models)
        return self.models[name]

    def target(self, name: str) -> type[Target]:
        """The target class called ``name``; UnknownName lists the alternatives."""
        if name not in self.targets:
            raise UnknownName("target", name, self.targets)
        return self.targets[name]

    def pass_(self, name: str) -> type[Pass]:
        """The pass class called ``name``; UnknownName lists the alternatives."""
        if name not in self.passes:
            raise UnknownName("pass", name, self.passes)
        return self.passes[name]


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus load errors, plugin facts and a lazily built registry."""

    def __init__(self) -> None:
        super().__init__("edgest")
        self.add_hookspecs(hookspecs)
        self.load_errors: list[str] = []
        self.infos: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None

    def add(self, plugin: object, name: str, info: PluginInfo | None = None) -> None:
        """Register ``plugin`` under ``name`` and forget the cached registry."""
        self.register(plugin, name=name)
        self.infos[name] = info or PluginInfo(name, getattr(plugin, "__name__", repr(plugin)))
        self._registry = None

    def remove(self, name: str) -> None:
        """Unregister the plugin called ``name``."""
        self.unregister(name=name)
        self.infos.pop(name, None)
        self._registry = None

    @property
    def registry(self) -> Registry:
        """The registry, built on first use by calling every plugin's register hooks."""
        if self._registry is None:
            self._registry = self._collect()
        return self._registry

    def _collect(self) -> Registry:
        reg = Registry()
        for kind, hook in (("model", "register_models"), ("pass", "register_passes"), ("target", "register_targets")):
            table: dict[str, Any] = {"model": reg.models, "pass": reg.passes, "target": reg.targets}[kind]
            for impl in reversed(getattr(self.hook, hook).get_hookimpls()):
                plugin_name = impl.plugin_name

                def register(obj: Any, _kind: str = kind, _table: dict[str, Any] = table, _p: str = plugin_name) -> None:
                    name = getattr(obj, "name", None)
                    if not isinstance(name, str) or not _NAME.match(name):
                        raise PluginError(f"plugin '{_p}' registered a {_kind} without a valid lowercase name: {obj!r}")
                    if name in _table:
                        other = reg.owners[(_kind, name)]
                        raise PluginError(
                            f"duplicate {_kind} name '{name}': registered by plugin '{other}' and plugin '{_p}'; "
                            f"uninstall or disable one of them (EDGEST_LOAD_PLUGINS)"
                        )
                    _table[name] = obj
                    reg.owners[(_kind, name)] = _p

                try:
                    impl.function(register)
                except PluginError:
                    raise
                except Exception as exc:  # a plugin's hook raised: report and skip it
                    self.load_errors.append(f"edgest: plugin '{plugin_name}' failed to register {kind}s: {exc}")
        return reg


def _selected(names: Iterable[str]) -> Callable[[str], bool]:
    only = {n.strip() for n in os.environ.get("EDGEST_LOAD_PLUGINS", "").split(",") if n.strip()}
    disabled = os.environ.get("EDGEST_DISABLE_PLUGIN_AUTOLOAD", "") not in ("", "0")
    if only:
        return lambda name: name in only
    return lambda name: not disabled


def _import(module: str) -> ModuleType:
    return importlib.import_module(module)


def load_entry_points(pm: PluginManager) -> None:
    """Import and register every selected entry point of group ``edgest``; record failures."""
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    keep = _selected(ep.name for ep in eps)
    for ep in sorted(eps, key=lambda e: e.name):
        if not keep(ep.name) or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure must not break the CLI
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            pm.load_errors.append(f"edgest: plugin '{ep.name}' failed to load: {type(exc).__name__}: {reason}")
            continue
        dist = ep.dist.name if ep.dist else ""
        version = ep.dist.version if ep.dist else ""
        pm.add(plugin, ep.name, PluginInfo(ep.name, ep.value, dist, version))


def new_plugin_manager(entry_points: bool = True) -> PluginManager:
    """A fresh manager with the built-in plugins and, unless told otherwise, entry points."""
    pm = PluginManager()
    for module in DEFAULT_PLUGINS:
        pm.add(_import(module), module, PluginInfo(module, module))
    if entry_points:
        load_entry_points(pm)
    pm.check_pending()
    return pm


_PM: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager (created on first use)."""
    global _PM
    if _PM is None:
        _PM = new_plugin_manager()
    return _PM


def get_registry() -> Registry:
    """The process-wide registry."""
    return get_plugin_manager().registry
