"""Every small zoo variant lowers on every CPU-runnable target and passes the fp32 accuracy check.

Slow (tens of minutes on two cores: 7 models x 4 toolchains, each a real lower + run in a child
process), so it is marked ``slow`` and runs only when asked for:
``pytest -m slow tests/models/test_zoo_all_targets.py``.
The CUDA target runs on the CPU here (AOTInductor's C++ backend, ``device=cpu``).
"""

from __future__ import annotations

import importlib

import edgest_models.plugin
import pytest

import edgest
from edgest.plugins import new_plugin_manager
from edgest.testing.weights import write_responsive_weights

pytestmark = pytest.mark.slow

SMALL = ("squeezetime_tiny", "emov2_tiny_video", "vivit_fe_tiny", "vivit_fa_tiny", "lmuformer_video_tiny",
         "lmuformer_tiny", "lmuformer_spiking_tiny")
#: target -> (plugin module, the toolchain it imports, target options)
TARGETS = {
    "onnx": ("edgest_onnx.plugin", "onnxruntime", {}),
    "executorch": ("edgest_executorch.plugin", "executorch", {}),
    "tvm": ("edgest_tvm.plugin", "tvm", {}),
    "cuda": ("edgest_cuda.plugin", "torch._inductor", {"device": "cpu"}),
}


@pytest.fixture(scope="module")
def registry(request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("28 compiles (tens of minutes): run with -m slow")
    pm = new_plugin_manager(entry_points=False)
    pm.add(edgest_models.plugin, "models")
    for name, (module, _, _) in TARGETS.items():
        try:
            pm.add(importlib.import_module(module), name)
        except ImportError:  # the toolchain test below skips with the reason
            pass
    return pm.registry


def test_small_variants_are_the_zoo_tiny_ones():
    pm = new_plugin_manager(entry_points=False)
    pm.add(edgest_models.plugin, "models")
    tiny = sorted(n for n in pm.registry.models if "tiny" in n)
    assert tiny == sorted(SMALL)


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("model", SMALL)
def test_small_variant_lowers_and_matches_eager(registry, tmp_path, model, target):
    _, toolchain, options = TARGETS[target]
    pytest.importorskip(toolchain, reason=f"the {target} target needs {toolchain}")
    weights = None
    if "spiking" in model or "emov2" in model:  # ignore their input at random init: the check would not judge them
        weights = write_responsive_weights(registry.model(model), tmp_path / "responsive.pt")
    report = edgest.compile(model, target, out_dir=tmp_path / "run", registry=registry, target_options=options,
                            weights=weights, samples=4, latency=None, task_samples=0)
    acc = report.check("accuracy")
    assert report.status == "passed", f"{model} on {target}: {report.status}: {report.error or (acc and acc.reason)}"
    assert acc is not None and acc.status == "passed" and acc.metrics["top1_agreement"] == 1.0
