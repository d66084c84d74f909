"""What is installed: registered models, targets, passes and plugins, and the host (``list``, ``doctor``).

Listing must be quick (``edgest list`` well under 2 s, even on a fresh clone): measuring a model's
parameters and MACs builds it (torch, about 8 s for the zoo), so those figures come from a per-user
cache keyed by the model's spec and source (:func:`stats_key`), and missing ones are measured only
when asked for (``edgest list models --stats``, ``edgest list models NAME``, a ``--model-option`` variant).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.host import cpu_model, describe, isa_summary
from edgest.plugins import get_plugin_manager

if TYPE_CHECKING:
    from edgest.model import ModelEntry
    from edgest.records import ModelSpec


#: bump when the way parameters and MACs are counted changes: every cached figure is measured again
STATS_VERSION = 1


def cache_dir() -> Path:
    """edgest's per-user cache folder: ``$XDG_CACHE_HOME/edgest``, else ``~/.cache/edgest``.

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG base-directory spec says (it would put a cache folder
    into whatever folder edgest was started from)."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base and os.path.isabs(base) else Path.home() / ".cache") / "edgest"


def stats_key(entry: ModelEntry, spec: ModelSpec) -> str | None:
    """What a model's parameters and MACs depend on, hashed: its spec, its factory module's source, the torch
    version and :data:`STATS_VERSION`. None when the source cannot be read (then nothing is cached)."""
    source = _factory_source(entry)
    if source is None:
        return None
    payload = {"spec": asdict(spec), "source": hashlib.sha256(source).hexdigest(), "version": STATS_VERSION,
               "torch": _torch_version()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _torch_version() -> str:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _factory_source(entry: ModelEntry) -> bytes | None:
    """The bytes of the file that defines the model's factory, found without importing it."""
    import importlib.util
    import inspect

    try:
        if isinstance(entry.factory, str):
            found = importlib.util.find_spec(entry.factory.partition(":")[0])
            origin = found.origin if found else None
        else:
            origin = inspect.getsourcefile(entry.factory)
        return Path(origin).read_bytes() if origin else None
    except (ImportError, ValueError, TypeError, OSError):
        return None


class _StatsCache:
    """Parameters and MACs by :func:`stats_key`, in ``model-stats.json`` of :func:`cache_dir`.

    Read once, written once (atomically, :mod:`edgest.fsio`) if anything was measured. A cache that
    cannot be read or written is only slower: figures are measured again, never wrong.
    """

    def __init__(self) -> None:
        self.path = cache_dir() / "model-stats.json"
        try:
            data = json.loads(self.path.read_text())
            self.entries: dict[str, Any] = data if isinstance(data, dict) else {}
        except (OSError, ValueError, RecursionError):
            self.entries = {}
        self.dirty = False

    def get(self, entry: ModelEntry, spec: ModelSpec, measure: bool) -> dict[str, int] | None:
        """``{"params", "macs"}`` from the cache, else measured if ``measure``, else None."""
        key = stats_key(entry, spec)
        hit = self.entries.get(key) if key else None
        if isinstance(hit, dict) and isinstance(hit.get("params"), int) and isinstance(hit.get("macs"), int):
            return {"params": hit["params"], "macs": hit["macs"]}
        if not measure:
            return None
        from edgest.model import model_stats

        stats = model_stats(entry, spec)
        if key:
            self.entries[key] = {"model": entry.name, **stats}
            self.dirty = True
        return stats

    def save(self) -> None:
        """Write the cache if anything was measured; a folder that cannot be written is skipped."""
        if self.dirty:
            write_cache_file(self.path, json.dumps(self.entries, indent=1, sort_keys=True))


def write_cache_file(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` under :func:`cache_dir` atomically, making its folder; False when it cannot be written.

    A cache only saves time, so a folder that cannot be written (or a full disk) is not an error. A ``HOME``
    naming a folder that does not exist is left alone: edgest never creates someone's home for a cache.
    """
    from edgest.errors import BadInput
    from edgest.fsio import atomic_write_text

    home = Path.home()
    if path.is_relative_to(home) and not home.is_dir():
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except (OSError, BadInput):
        return False
    return True


def _models(name: str | None = None, option_items: Sequence[str] = (), stats: bool = False,
            on_measure: Callable[[str, int, int], None] | None = None) -> list[dict[str, Any]]:
    """A row per model (or just ``name``): input, parameters and MACs of its config or, given
    ``--model-option`` items, of the variant they make (then only the models that take them).

    Parameters and MACs come from the stats cache (:func:`cached_stats`); missing ones are measured
    only when asked for: ``stats``, a named model, or a variant. Otherwise they are None.
    """
    from edgest.model_options import parse_items

    registry = get_plugin_manager().registry
    entries = {name: registry.model(name)} if name else dict(sorted(registry.models.items()))
    options = parse_items(option_items, entries) if option_items else {}
    if option_items:
        entries = {n: e for n, e in entries.items() if options[n]}
    measure = stats or name is not None or bool(option_items)
    cache = _StatsCache()
    rows = []
    for i, (n, e) in enumerate(entries.items()):
        if on_measure and measure:
            on_measure(n, i, len(entries))
        rows.append(_model_row(e, options.get(n, {}), name is not None, bool(option_items), cache, measure))
    cache.save()
    return rows


def _model_row(entry: ModelEntry, options: dict[str, Any], named: bool, with_options: bool,
               cache: _StatsCache | None = None, measure: bool = True) -> dict[str, Any]:
    """One model's row; a named model's bad option is an error, a listed one's is said in its row."""
    from edgest.errors import BadInput
    from edgest.model_options import describe_options, resolve

    row: dict[str, Any] = {"name": entry.name, "family": entry.spec.family}
    try:
        spec = resolve(entry, None, options)
    except BadInput as exc:
        if named:
            raise
        return {**row, "input": "-", "params": None, "macs": None, "options": str(exc)}
    try:
        stats = (cache or _StatsCache()).get(entry, spec, measure)
        params, macs = (stats["params"], stats["macs"]) if stats else (None, None)
    except Exception as exc:  # noqa: BLE001 - a model that cannot build still gets listed
        params, macs = None, f"? ({type(exc).__name__})"
    row.update(input="x".join(map(str, spec.input.shape)), params=params, macs=macs)
    if named or with_options:  # a named model shows its whole config: the options it takes
        row["options"] = describe_options(spec.config if named else options)
    return row


def _targets() -> list[dict[str, Any]]:
    rows = []
    for name, cls in sorted(get_plugin_manager().registry.targets.items()):
        reason = cls.unavailable_reason()
        rows.append({"name": name, "format": cls.artifact_format, "precisions": ",".join(cls.precisions),
                     "available": "yes" if reason is None else f"no: {reason}", "description": cls.description})
    return rows


def _passes() -> list[dict[str, Any]]:
    from edgest.options import describe_table

    return [{"name": n, "options": describe_table(c.option_table) or "-", "description": c.description}
            for n, c in sorted(get_plugin_manager().registry.passes.items())]


def _plugins() -> list[dict[str, Any]]:
    pm = get_plugin_manager()
    reg = pm.registry
    provides: dict[str, list[str]] = {}
    for (kind, name), owner in sorted(reg.owners.items()):
        provides.setdefault(owner, []).append(f"{kind}:{name}")
    return [{"name": i.name, "distribution": i.distribution, "version": i.version, "status": i.status,
             "registers": ", ".join(provides.get(i.name, [])) or "-"} for i in pm.infos.values()]


def inventory(kinds: list[str], model: str | None = None, model_options: Sequence[str] = (), *, stats: bool = False,
              on_measure: Callable[[str, int, int], None] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Rows per kind (``models``, ``targets``, ``passes``, ``plugins``); ``models`` only ``model`` if given,
    at the variant ``model_options`` (``KEY=VALUE`` or ``MODEL:KEY=VALUE`` items) make.

    A model's ``params`` and ``macs`` are None when not cached yet and not asked for: ``stats``
    measures every listed model's (seconds for the zoo, once; then cached), as does naming a model
    or giving model options. ``on_measure(name, index, count)`` hears each model before it is measured.
    """
    table = {"models": lambda: _models(model, model_options, stats, on_measure), "targets": _targets, "passes": _passes,
             "plugins": _plugins}
    return {k: table[k]() for k in kinds}


def doctor() -> dict[str, Any]:
    """Versions of Python, torch and every target's toolchain; CPU, its ISA features and threads."""
    import torch

    data: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "isa": isa_summary(),  # what decides which precisions can be fast here (AVX-512, VNNI, AMX, bf16, fp16)
        "isa_features": describe()["isa"],  # the same, as the OS names them (every report's host dict carries these)
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "edgest": importlib.metadata.version("edgest"),
    }
    for name, cls in sorted(get_plugin_manager().registry.targets.items()):
        data[f"target {name}"] = _target_status(cls)
    return data


def _target_status(cls: Any) -> str:
    """``available; onnx 1.23.2, ...`` or ``unavailable: <reason>; <what is installed>``, each package named once."""
    versions = cls.toolchain_versions()
    versions.pop("torch", None)
    reason = cls.unavailable_reason()
    if reason is not None:  # the reason already names what is missing
        versions = {k: v for k, v in versions.items() if not (v == "not installed" and k in reason)}
    status = "available" if reason is None else f"unavailable: {reason}"
    return f"{status}; " + ", ".join(f"{k} {v}" for k, v in versions.items()) if versions else status
