"""``edgest.code_fingerprint``: the code behind a cache key, and the bench's cells keyed on it."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from edgest import code_fingerprint as cf


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway package ``fp_pkg`` (with a subpackage) and a lone module ``fp_lone`` on the path."""
    pkg = tmp_path / "fp_pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "mod.py").write_text(textwrap.dedent("""
        class Target:
            pass

        def make():
            return Target()
    """))
    (tmp_path / "fp_lone.py").write_text("def make():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    for name in [m for m in sys.modules if m.startswith(("fp_pkg", "fp_lone"))]:
        del sys.modules[name]
    cf._source_hash.cache_clear()


def test_the_code_root_is_the_top_package_or_the_lone_module(package: Path) -> None:
    from fp_pkg.sub.mod import Target, make

    assert cf.code_root(Target) == cf.code_root(make) == cf.code_root("fp_pkg.sub.mod:make") == package
    assert cf.code_root("fp_lone:make") == package.parent / "fp_lone.py"
    assert cf.code_root("no_such_module_here.x:y") is None
    assert cf.code_root(len) is None  # a built-in has no file


def test_a_module_imported_from_a_file_under_a_made_up_name_is_its_file(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """As edgest imports a user's model file: no finder knows the name, ``sys.modules`` does."""
    import importlib.util

    path = tmp_path / "net.py"
    path.write_text("class Net:\n    pass\n")
    spec = importlib.util.spec_from_file_location("edgest_user_model_fp_test", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    assert cf.code_root(module.Net) == path
    before = cf.code_fingerprint(module.Net)
    path.write_text("class Net:\n    x = 1\n")
    cf._source_hash.cache_clear()
    assert cf.code_fingerprint(module.Net) != before


def test_the_fingerprint_follows_every_file_of_the_package(package: Path) -> None:
    from fp_pkg.sub.mod import Target

    before = cf.code_fingerprint(Target)
    assert cf.code_fingerprint(Target) == before == cf.code_fingerprint("fp_pkg.sub.mod:make")
    assert before != cf.code_fingerprint()  # edgest alone
    (package / "sub" / "mod.py").write_text((package / "sub" / "mod.py").read_text() + "\nX = 1\n")
    cf._source_hash.cache_clear()  # a process reads each folder once
    edited = cf.code_fingerprint(Target)
    assert edited != before
    (package / "sub" / "mod.py").rename(package / "mod.py")  # same bytes, another place
    cf._source_hash.cache_clear()
    assert cf.code_fingerprint(Target) not in (before, edited)


def test_a_bench_cell_is_keyed_on_its_target_and_model_packages_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin edited in place keeps its version; its cached bench cells must not be reused."""
    from edgest.bench import Cell, cell_key
    from edgest.plugins import get_registry

    registry = get_registry()
    cell = Cell("squeezetime_tiny", "onnx", "fp32")
    before = cell_key(cell, registry, None, {})
    assert cell_key(cell, registry, None, {}) == before
    real = cf._source_hash
    for owner in (registry.target("onnx"), registry.model("squeezetime_tiny").factory):
        edited = str(cf.code_root(owner))
        monkeypatch.setattr(cf, "_source_hash", lambda root, edited=edited: "edited" if root == edited else real(root))
        assert cell_key(cell, registry, None, {}) != before, owner
    monkeypatch.setattr(cf, "_source_hash", lambda root: "edited" if root == str(cf.code_root("edgest_tvm")) else real(root))
    assert cell_key(cell, registry, None, {}) == before  # another target's code is not this cell's
