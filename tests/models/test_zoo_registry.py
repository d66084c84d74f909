"""The zoo's registered specs agree with the model code, and listing the zoo imports no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from edgest.model import count_params, model_stats
from edgest_models import plugin
from edgest_models.squeezetime import CONFIGS


@pytest.mark.parametrize("entry", plugin.ENTRIES, ids=lambda e: e.name)
def test_spec_matches_model_config(entry):
    cfg = CONFIGS[entry.name]
    b, c, t, h, w = entry.spec.input.shape
    assert (c, t, h, w) == (3, cfg["num_frames"], cfg["image_size"], cfg["image_size"])
    assert entry.spec.num_classes == cfg["num_classes"]


def test_meta_device_stats_match_a_real_build():
    entry = next(e for e in plugin.ENTRIES if e.name == "squeezetime_tiny")
    model = entry.build()
    assert model_stats(entry)["params"] == count_params(model)
    out = model(torch.zeros(entry.spec.input.shape))
    assert tuple(out.shape) == (1, entry.spec.num_classes)


def test_plugin_import_stays_light():
    code = "import sys, edgest_models.plugin; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
