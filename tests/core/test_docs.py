"""docs/plugins.md cannot drift from the real hooks and contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgest import hookspecs
from edgest.model import ModelEntry
from edgest.passes.base import Pass, PassContext, PassResult
from edgest.quantization import ArtifactQuantizer, ProgramQuantizer, Quantized
from edgest.records import InputSpec, ModelSpec
from edgest.target import Lowered, Runner, Target

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


def _public(cls: type) -> list[str]:
    """Fields, class attributes and methods a plugin author uses: annotated or defined on the class itself."""
    names = set(getattr(cls, "__annotations__", {})) | {n for n in vars(cls) if not n.startswith("_")}
    return sorted(n for n in names if not n.startswith("_"))


@pytest.mark.parametrize("cls", [Target, Runner, Lowered, Pass, PassContext, PassResult, ModelSpec, InputSpec, ModelEntry,
                                 ProgramQuantizer, ArtifactQuantizer, Quantized], ids=lambda c: c.__name__)
def test_every_public_field_of_the_contract_is_documented(cls):
    missing = [n for n in _public(cls) if f"`{n}" not in DOC]
    assert not missing, f"{cls.__name__}: {', '.join(missing)} not documented in docs/plugins.md"


def test_documented_tables_name_each_field_with_its_type():
    """Every row of a field table is `name` | type | meaning: a field listed without a type is not documented."""
    for cls in (ModelSpec, InputSpec, PassContext, PassResult, Lowered):
        for name in cls.__dataclass_fields__:
            rows = [line for line in DOC.splitlines() if line.startswith(f"| `{name}` |")]
            assert rows and all(row.count("|") >= 4 and row.split("|")[2].strip() for row in rows), (cls.__name__, name)


def test_hookimpl_option_tables_and_the_kits_are_explained():
    for text in ("@edgest.hookimpl", "is not decorated with @edgest.hookimpl", "option_table", "--input-shape",
                 "device_runner", "runtime_requirements", "TargetConformance", "PassConformance", "ModelConformance",
                 "edgest list plugins", "run_decompositions", "examples/target", "examples/pass", "examples/model"):
        assert text in DOC, text
