"""What is installed: registered models, targets, passes and plugins, and the host (``list``, ``doctor``)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

from edgest.host import cpu_model
from edgest.plugins import get_plugin_manager


def _models() -> list[dict[str, Any]]:
    from edgest.model import model_stats

    rows = []
    for name, entry in sorted(get_plugin_manager().registry.models.items()):
        try:
            stats = model_stats(entry)
            params, macs = stats["params"], stats["macs"]
        except Exception as exc:  # noqa: BLE001 - a model that cannot build still gets listed
            params, macs = None, f"? ({type(exc).__name__})"
        rows.append({"name": name, "family": entry.spec.family, "input": "x".join(map(str, entry.spec.input.shape)),
                     "params": params, "macs": macs})
    return rows


def _targets() -> list[dict[str, Any]]:
    rows = []
    for name, cls in sorted(get_plugin_manager().registry.targets.items()):
        reason = cls.unavailable_reason()
        rows.append({"name": name, "format": cls.artifact_format, "precisions": ",".join(cls.precisions),
                     "available": "yes" if reason is None else f"no: {reason}", "description": cls.description})
    return rows


def _passes() -> list[dict[str, Any]]:
    return [{"name": n, "description": c.description} for n, c in sorted(get_plugin_manager().registry.passes.items())]


def _plugins() -> list[dict[str, Any]]:
    pm = get_plugin_manager()
    reg = pm.registry
    provides: dict[str, list[str]] = {}
    for (kind, name), owner in sorted(reg.owners.items()):
        provides.setdefault(owner, []).append(f"{kind}:{name}")
    return [{"name": i.name, "distribution": i.distribution, "version": i.version,
             "registers": ", ".join(provides.get(i.name, [])) or "-"} for i in pm.infos.values()]


def inventory(kinds: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Rows per kind (``models``, ``targets``, ``passes``, ``plugins``)."""
    table = {"models": _models, "targets": _targets, "passes": _passes, "plugins": _plugins}
    return {k: table[k]() for k in kinds}


def doctor() -> dict[str, Any]:
    """Versions of Python, torch and every target's toolchain; CPU and threads."""
    import torch

    data: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "edgest": importlib.metadata.version("edgest"),
    }
    for name, cls in sorted(get_plugin_manager().registry.targets.items()):
        versions = cls.toolchain_versions()
        versions.pop("torch", None)
        reason = cls.unavailable_reason()
        status = "available" if reason is None else f"unavailable: {reason}"
        data[f"target {name}"] = f"{status}; " + ", ".join(f"{k} {v}" for k, v in versions.items()) if versions else status
    return data
