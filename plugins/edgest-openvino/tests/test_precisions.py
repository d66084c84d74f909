"""fp16 and bf16: one IR run at another INFERENCE_PRECISION_HINT, and never reported as a precision that did not run.

Uses only edgest's public API, as any third-party plugin would.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import edgest

#: edgest precision → (OpenVINO hint, the CPU plugin's OPTIMIZATION_CAPABILITIES entry it needs)
HALF = {"bf16": ("bf16", "BF16"), "fp16": ("f16", "FP16")}


@pytest.fixture(scope="module")
def capabilities() -> list[str]:
    ov = pytest.importorskip("openvino", reason="openvino not installed (pip install -e plugins/edgest-openvino)")
    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


@pytest.mark.parametrize("precision", sorted(HALF))
def test_half_precision_compiles_runs_at_it_and_meets_its_limits(precision: str, capabilities: list[str],
                                                                 tmp_path: Path) -> None:
    hint, needs = HALF[precision]
    if needs not in capabilities:
        pytest.skip(f"this CPU has no {precision} the OpenVINO CPU plugin uses (capabilities: {', '.join(capabilities)}); "
                    "test_unsupported_half_precision_is_refused covers such hosts")
    report = edgest.compile("squeezetime_tiny", "openvino", precision=precision, out_dir=tmp_path / "run", latency=None,
                            samples=4)
    acc = report.check("accuracy")
    assert report.status == "passed", (report.error, acc.reason, acc.metrics.get("sqnr_db"))
    assert report.precision == precision
    details = report.artifact.details
    assert details["inference_precision"] == hint and details["execution_precision"] == hint
    assert hint in details["compute_layers_by_precision"]  # the convolutions themselves run at it
    assert acc.metrics["sqnr_db"] >= acc.limits["min_sqnr_db"] and acc.metrics["sqnr_db"] < 120  # not secretly f32
    assert details["weights_dtypes"] == (["f16"] if precision == "fp16" else ["f32"])


REFUSED = """
import json, sys
import edgest
from edgest.testing import tiny_convnet
report = edgest.compile(tiny_convnet(), "openvino", precision="fp16", input_shape=(1, 3, 16, 16), out_dir=sys.argv[1],
                        latency=None, samples=2)
acc = report.check("accuracy")
details = report.artifact.details
print(json.dumps({"status": report.status, "accuracy": acc.status, "reason": acc.reason,
                  "execution": details["execution_precision"], "note": details.get("execution_note", "")}))
"""


def test_unsupported_half_precision_is_refused(capabilities: list[str], tmp_path: Path) -> None:
    """A CPU without fp16 (here: oneDNN told to use nothing past AVX-512 VNNI) gets no check that claims fp16.

    The CPU plugin ignores an f16 hint it cannot execute and keeps its default (bf16 on AMX hosts,
    else f32); the runner reads that back and refuses, so the checks are not run, with the reason.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("ONEDNN_MAX_CPU_ISA names x86 ISAs; on this machine fp16 is tested where the CPU has it")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", REFUSED, str(tmp_path / "run")], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["execution"] in ("bf16", "f32")  # what the plugin would really run
    assert out["status"] == "incomplete" and out["accuracy"] == "not_run"
    assert out["reason"].startswith("target 'openvino' cannot run this f16 artifact here: the OpenVINO CPU plugin "
                                    f"would execute it in {out['execution']}")
    assert "cannot execute f16" in out["note"]
