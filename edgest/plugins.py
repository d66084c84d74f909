"""Plugin loading and the registry of models, passes and targets.

Built-in plugins load first, then entry points of group ``edgest`` (sorted by name). Each
plugin is checked as it is added: its ``register_*`` hooks run at once and everything they hand
over is validated (:mod:`edgest.registration`). A plugin that fails to import, defines hook
functions without ``@edgest.hookimpl``, implements a hook that does not exist, has a hook that
raises, or registers anything invalid or a name another plugin already holds is skipped whole:
nothing of it is registered, :attr:`PluginManager.load_errors` gets one line naming it and the
problem (both plugins for a duplicate name), and ``edgest list plugins`` shows it with that
status. Every other plugin, and every command, keeps working.

Environment:
- ``EDGEST_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points (except those named below).
- ``EDGEST_LOAD_PLUGINS=a,b``: load only the entry points named ``a`` and ``b``.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from edgest import hookspecs
from edgest.errors import UnknownName
from edgest.registration import problem as registration_problem
from edgest.registration import registered_name

if TYPE_CHECKING:
    from edgest.model import ModelEntry
    from edgest.passes.base import Pass
    from edgest.target import Target

ENTRY_POINT_GROUP = "edgest"
DEFAULT_PLUGINS: tuple[str, ...] = ("edgest.targets.eager", "edgest.passes.builtin")
#: hook name → the kind of thing its ``register`` callable takes
REGISTER_HOOKS = {"register_models": "model", "register_passes": "pass", "register_targets": "target"}
HOOK_NAMES: tuple[str, ...] = tuple(n for n in vars(hookspecs) if n.startswith("register_"))
_MARK = "edgest_impl"  # the attribute pluggy's HookimplMarker("edgest") sets on a decorated function


@dataclass(frozen=True)
class PluginInfo:
    """One plugin: its name, where it came from, its version and status.

    ``status`` is ``loaded``, ``skipped: <problem>`` or ``failed to load: <error>``; the line in
    :attr:`PluginManager.load_errors` is ``edgest: plugin '<name>' <status>``.
    """

    name: str
    module: str
    distribution: str = "edgest"
    version: str = ""
    status: str = "loaded"


@dataclass
class Registry:
    """Everything the loaded plugins registered, keyed by name, with the owning plugin."""

    models: dict[str, ModelEntry] = field(default_factory=dict)
    passes: dict[str, type[Pass]] = field(default_factory=dict)
    targets: dict[str, type[Target]] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    def table(self, kind: str) -> dict[str, Any]:
        """The names → objects of ``kind`` (``model``, ``pass``, ``target``)."""
        return {"model": self.models, "pass": self.passes, "target": self.targets}[kind]

    def model(self, name: str) -> ModelEntry:
        """The model called ``name``; UnknownName lists the alternatives."""
        if name not in self.models:
            raise UnknownName("model", name, self.models, selection_note())
        return self.models[name]

    def target(self, name: str) -> type[Target]:
        """The target class called ``name``; UnknownName lists the alternatives."""
        if name not in self.targets:
            raise UnknownName("target", name, self.targets, selection_note())
        return self.targets[name]

    def pass_(self, name: str) -> type[Pass]:
        """The pass class called ``name``; UnknownName lists the alternatives."""
        if name not in self.passes:
            raise UnknownName("pass", name, self.passes, selection_note())
        return self.passes[name]


def _one_line(exc: BaseException) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _members(plugin: object) -> dict[str, Any]:
    try:
        return dict(vars(plugin))
    except TypeError:  # an object without __dict__: fall back to what dir() shows
        return {n: getattr(plugin, n, None) for n in dir(plugin)}


def marker_problem(plugin: object) -> str | None:
    """Hook functions without ``@edgest.hookimpl``, or marked ones that are no edgest hook; None if neither.

    pluggy silently ignores an undecorated function, so a plugin author would see nothing
    register and no error; a misspelt decorated one would fail ``check_pending`` for every plugin.
    """
    members = _members(plugin)
    unmarked = [n for n in HOOK_NAMES if callable(members.get(n)) and not hasattr(members[n], _MARK)]
    if unmarked:
        return (f"{', '.join(unmarked)} {'is' if len(unmarked) == 1 else 'are'} not decorated with "
                "@edgest.hookimpl, so edgest would never call it; add @edgest.hookimpl above each hook function")
    for name, value in sorted(members.items()):
        if hasattr(value, _MARK) and name not in HOOK_NAMES and callable(value):
            close = difflib.get_close_matches(name, HOOK_NAMES, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            return f"{name} is marked @edgest.hookimpl but is not an edgest hook (hooks: {', '.join(HOOK_NAMES)}){hint}"
    if not any(hasattr(members.get(n), _MARK) for n in HOOK_NAMES):
        return f"it implements no edgest hook ({', '.join(HOOK_NAMES)}); define one and decorate it with @edgest.hookimpl"
    return None


class PluginManager(pluggy.PluginManager):
    """pluggy's manager that checks each plugin as it is added, keeps load errors and plugin facts."""

    def __init__(self) -> None:
        super().__init__("edgest")
        self.add_hookspecs(hookspecs)
        #: one line per plugin that failed to load or was skipped, for the CLI to print
        self.load_errors: list[str] = []
        #: every plugin added or tried, in load order, skipped ones included
        self.infos: dict[str, PluginInfo] = {}
        self._provided: dict[str, list[tuple[str, str, Any]]] = {}
        self._registry: Registry | None = None

    def add(self, plugin: object, name: str, info: PluginInfo | None = None) -> str | None:
        """Register ``plugin`` under ``name`` if everything it registers is valid; else skip it.

        Returns None when it was registered, else the problem (also in :attr:`load_errors` and
        in :attr:`infos`, so ``edgest list plugins`` shows it).
        """
        info = info or PluginInfo(name, getattr(plugin, "__name__", repr(plugin)))
        if name in self.infos:
            return self._skip(info, f"another plugin is already loaded under the name '{name}'", record=False)
        found = marker_problem(plugin)
        if found is None:
            try:
                self.register(plugin, name=name)
            except Exception as exc:  # noqa: BLE001 - pluggy's validation of hook signatures
                found = f"pluggy refused its hooks: {_one_line(exc)}"
        provided: list[tuple[str, str, Any]] = []
        if found is None:
            provided, found = self._registrations(name)
            if found is not None:
                self.unregister(name=name)
        if found is not None:
            return self._skip(info, found)
        self.infos[name] = info
        self._provided[name] = provided
        self._registry = None
        return None

    def _skip(self, info: PluginInfo, problem: str, record: bool = True) -> str:
        self.note(replace(info, status=f"skipped: {problem}"), record)
        return problem

    def note(self, info: PluginInfo, record: bool = True) -> None:
        """Keep ``info`` (a plugin that did not load, with its status) and its one line for the CLI."""
        if record:
            self.infos[info.name] = info
        self.load_errors.append(f"edgest: plugin '{info.name}' {info.status}")

    def _registrations(self, plugin_name: str) -> tuple[list[tuple[str, str, Any]], str | None]:
        """Run ``plugin_name``'s register hooks: ``[(kind, name, obj)]`` and the first problem found."""
        taken = {(kind, n): owner for owner, items in self._provided.items() for kind, n, _ in items}
        out: list[tuple[str, str, Any]] = []
        for hook, kind in REGISTER_HOOKS.items():
            got: list[Any] = []
            for impl in getattr(self.hook, hook).get_hookimpls():
                if impl.plugin_name != plugin_name:
                    continue
                try:
                    impl.function(got.append)
                except Exception as exc:  # noqa: BLE001 - a plugin's hook raised: skip that plugin
                    return out, f"its {hook} hook raised {_one_line(exc)}"
            for obj in got:
                why = registration_problem(kind, obj)
                if why:
                    return out, why
                name = registered_name(kind, obj)
                if (kind, name) in taken:
                    return out, (f"{kind} '{name}' is already registered by plugin '{taken[(kind, name)]}'; "
                                 f"rename it, or disable one of the two plugins (EDGEST_LOAD_PLUGINS)")
                if any(k == kind and n == name for k, n, _ in out):
                    return out, f"it registers {kind} '{name}' twice"
                out.append((kind, name, obj))
        return out, None

    def remove(self, name: str) -> None:
        """Unregister the plugin called ``name`` (loaded or skipped)."""
        if self.has_plugin(name):
            self.unregister(name=name)
        self.infos.pop(name, None)
        self._provided.pop(name, None)
        self._registry = None

    @property
    def registry(self) -> Registry:
        """Everything the loaded plugins registered, in load order."""
        if self._registry is None:
            reg = Registry()
            for owner, items in self._provided.items():
                for kind, name, obj in items:
                    reg.table(kind)[name] = obj
                    reg.owners[(kind, name)] = owner
            self._registry = reg
        return self._registry


def _selection() -> tuple[set[str], bool]:
    """The plugins ``EDGEST_LOAD_PLUGINS`` names, and whether ``EDGEST_DISABLE_PLUGIN_AUTOLOAD`` is set."""
    only = {n.strip() for n in os.environ.get("EDGEST_LOAD_PLUGINS", "").split(",") if n.strip()}
    return only, os.environ.get("EDGEST_DISABLE_PLUGIN_AUTOLOAD", "") not in ("", "0")


def _selected() -> Callable[[str], bool]:
    only, disabled = _selection()
    if only:
        return lambda name: name in only
    return lambda name: not disabled


def selection_note() -> str:
    """Which variable keeps installed plugins out of the registry, and how to undo it; '' when none does.

    An unknown model, target or pass says it: "unknown target 'onnx'; available: eager" alone, with
    edgest-onnx installed, does not tell the user why."""
    only, disabled = _selection()
    if only:
        given = os.environ["EDGEST_LOAD_PLUGINS"].strip()
        return f"EDGEST_LOAD_PLUGINS={given!r} loads only those plugins; unset it to load every installed one"
    return ("EDGEST_DISABLE_PLUGIN_AUTOLOAD is set: no installed plugin is loaded; unset it to load them"
            if disabled else "")


def _import(module: str) -> ModuleType:
    return importlib.import_module(module)


def load_entry_points(pm: PluginManager) -> None:
    """Import and add every selected entry point of group ``edgest``; record failures."""
    keep = _selected()
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if not keep(ep.name) or ep.name in pm.infos:
            continue
        info = PluginInfo(ep.name, ep.value, ep.dist.name if ep.dist else "", ep.dist.version if ep.dist else "")
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure must not break the CLI
            pm.note(replace(info, status=f"failed to load: {_one_line(exc)}"))
            continue
        pm.add(plugin, ep.name, info)


def new_plugin_manager(entry_points: bool = True) -> PluginManager:
    """A fresh manager with the built-in plugins and, unless told otherwise, entry points."""
    pm = PluginManager()
    for module in DEFAULT_PLUGINS:
        pm.add(_import(module), module, PluginInfo(module, module))
    if entry_points:
        load_entry_points(pm)
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
