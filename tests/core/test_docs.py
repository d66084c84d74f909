"""docs/plugins.md cannot drift from the real hooks and contract."""

from __future__ import annotations

from pathlib import Path

from edgest import hookspecs
from edgest.target import Target

DOC = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()


def test_every_hook_is_documented():
    hooks = [n for n in vars(hookspecs) if n.startswith("register_")]
    assert len(hooks) == 4
    for name in hooks:
        assert f"### `{name}(" in DOC, f"hook {name} is not documented in docs/plugins.md"


def test_every_target_contract_member_is_documented():
    members = ["name", "artifact_format", "precisions", "requires", "install_hint", "toolchain", "lower", "load",
               "quantizer", "host_unavailable_reason", "default_precision"]
    assert all(hasattr(Target, m) or m in Target.__annotations__ for m in members)
    for m in members:
        assert f"`{m}" in DOC, f"Target.{m} is not documented"
    worker = (Path(__file__).resolve().parents[2] / "edgest" / "checks" / "worker.py").read_text()
    for attr in ("label", "timing_unavailable"):  # optional runner attributes the check worker reads
        assert f'"{attr}"' in worker and f"`{attr}`" in DOC, attr
