"""edgest's processes send no OpenVINO telemetry: the plugin hides ``openvino_telemetry`` from ``import openvino``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("openvino", reason="openvino not installed (pip install -e plugins/edgest-openvino)")
pytest.importorskip("openvino_telemetry", reason="openvino-telemetry not installed: nothing is sent anyway")

_PROBE = """
import json, os, sys
forks = []
os.register_at_fork(before=lambda: forks.append(1))  # OpenVINO sends each event from a forked process
if {plugin_first}:
    import edgest_openvino
import openvino as ov
import torch
from openvino.tools.ovc import convert_impl
ov.convert_model(torch.export.export(torch.nn.Linear(4, 2).eval(), (torch.randn(1, 4),)), example_input=(torch.randn(1, 4),))
import openvino_telemetry  # importable as usual afterwards
print(json.dumps({{"telemetry": convert_impl.tm.__name__, "forks": len(forks),
                  "importable": hasattr(openvino_telemetry, "Telemetry")}}))
"""


def _probe(plugin_first: bool) -> dict:
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(plugin_first=plugin_first)], capture_output=True,
                          text=True, check=False, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_openvino_imported_after_the_plugin_takes_its_no_telemetry_path():
    assert _probe(plugin_first=True) == {"telemetry": "openvino.tools.ovc.telemetry_stub", "forks": 0, "importable": True}


def test_a_process_that_imported_openvino_first_keeps_the_users_setting():
    assert _probe(plugin_first=False)["telemetry"] == "openvino_telemetry"
