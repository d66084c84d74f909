"""coremltools imported without the frameworks it only probes for (edgest_coreml.lean_import)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys

import pytest

lean = pytest.importorskip("edgest_coreml.lean_import", reason="edgest-coreml not installed (pip install -e targets/coreml)")


def test_hidden_blocks_only_inside_and_only_what_was_not_imported() -> None:
    sys.modules.pop("tabnanny", None)
    with lean.hidden(["tabnanny", "json"]):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("tabnanny")
        assert importlib.import_module("json") is json  # already imported: left alone
    assert importlib.import_module("tabnanny").__name__ == "tabnanny"


def test_hidden_keeps_a_module_imported_inside_by_other_means() -> None:
    sys.modules.pop("tabnanny", None)
    with lean.hidden(["tabnanny"]):
        del sys.modules["tabnanny"]  # something else imported it meanwhile: not ours to remove again
        sys.modules["tabnanny"] = json
    assert sys.modules.pop("tabnanny") is json


def test_install_is_once_and_uninstall_takes_it_off() -> None:
    if "coremltools._deps" in sys.modules:
        before = list(sys.meta_path)
        lean.install()
        assert sys.meta_path == before  # nothing to do once coremltools is imported
        return
    lean.uninstall()  # the plugin installed it when it loaded
    before = list(sys.meta_path)
    try:
        lean.install()
        lean.install()
        assert len(sys.meta_path) == len(before) + 1
        lean.uninstall()
        assert sys.meta_path == before
    finally:
        lean.install()


_PROBE = """
import importlib.util, json, sys, time
import edgest_coreml
t0 = time.perf_counter()
import coremltools, coremltools._deps as d
seconds = time.perf_counter() - t0
installed = [n for n in {hidden!r} if importlib.util.find_spec(n) is not None]
seen_by_coremltools = [n for n in installed if n in sys.modules]
finder_left = any(getattr(f, "module", None) == "coremltools._deps" for f in sys.meta_path)
for n in installed:
    __import__(n)  # importable as usual afterwards
print(json.dumps({{"installed": installed, "seen": seen_by_coremltools, "finder_left": finder_left,
                  "flags": [d._HAS_SKLEARN, d._HAS_XGBOOST, d._HAS_TF, d._HAS_HF], "torch": d._HAS_TORCH,
                  "seconds": seconds}}))
"""


def test_coremltools_imports_without_the_hidden_frameworks_in_a_fresh_process() -> None:
    pytest.importorskip("coremltools", reason="coremltools not installed")
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(hidden=lean.HIDDEN)], capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["seen"] == []  # none of them was imported while coremltools probed
    assert out["flags"] == [False, False, False, False]
    assert out["torch"] is True  # the converter edgest uses is on
    assert out["finder_left"] is False  # one-shot


def test_a_framework_imported_before_coremltools_is_seen_as_before() -> None:
    pytest.importorskip("coremltools", reason="coremltools not installed")
    if importlib.util.find_spec("xgboost") is None:
        pytest.skip("xgboost not installed here: nothing to see")
    code = ("import xgboost, edgest_coreml, coremltools._deps as d; "
            "print(d._HAS_XGBOOST)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "True"
