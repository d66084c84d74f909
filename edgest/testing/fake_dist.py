"""Install a throwaway plugin distribution into a folder, for tests of entry-point loading."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_fake_distribution(root: Path, name: str, module_source: str, version: str = "0.1") -> Path:
    """Write ``{name}_mod.py`` and a ``.dist-info`` declaring it as edgest entry point ``name``.

    Put ``root`` on ``PYTHONPATH`` (or ``sys.path``) and ``importlib.metadata`` finds the plugin
    exactly as it finds an installed one. Returns the module file.
    """
    module = root / f"{name}_mod.py"
    module.write_text(textwrap.dedent(module_source))
    info = root / f"{name}_dist-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-dist\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[edgest]\n{name} = {name}_mod\n")
    return module
