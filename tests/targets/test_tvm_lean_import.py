"""`import tvm` in a check process skips torch, which it only probes for (edgest_tvm, edgest.lean_import)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("tvm", reason="apache-tvm not installed (pip install -e targets/tvm)")
pytest.importorskip("edgest_tvm", reason="edgest-tvm not installed (pip install -e targets/tvm)")

_PROBE = """
import json, sys
if {torch_first}:
    import torch
import edgest_tvm
import numpy as np
import tvm
import tvm.relax.base_py_module as bpm
seen = {{"torch_while_tvm": "torch" in sys.modules, "dlpack_helper": bpm.to_dlpack_legacy is not None,
        "finder_left": any(getattr(f, "module", None) == "tvm" for f in sys.meta_path)}}
import torch  # importable as usual afterwards, and both work side by side
seen["sum"] = float(tvm.runtime.tensor(torch.ones(3).numpy()).numpy().sum())
print(json.dumps(seen))
"""


def _probe(torch_first: bool) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(torch_first=torch_first)], capture_output=True,
                          text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform.startswith("win"), reason="tvm_ffi's torch-first import guards a Windows conflict")
def test_a_process_without_torch_imports_tvm_without_it():
    assert _probe(torch_first=False) == {"torch_while_tvm": False, "dlpack_helper": False, "finder_left": False,
                                         "sum": 3.0}


def test_a_process_that_imported_torch_first_sees_tvm_as_before():
    assert _probe(torch_first=True) == {"torch_while_tvm": True, "dlpack_helper": True, "finder_left": False,
                                        "sum": 3.0}
