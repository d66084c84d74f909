"""The zoo's registered specs agree with the model code, and listing the zoo imports no torch."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch

from edgest.model import count_params, model_stats
from edgest_models import plugin


def _config(entry):
    module = importlib.import_module(entry.factory.partition(":")[0])
    return module.CONFIGS[entry.name]


@pytest.mark.parametrize("entry", plugin.ENTRIES, ids=lambda e: e.name)
def test_spec_matches_model_config(entry):
    cfg = _config(entry)
    shape = entry.spec.input.shape
    if entry.spec.input.layout == "B,C,T,H,W":
        assert shape[1:] == (3, cfg["num_frames"], cfg["image_size"], cfg["image_size"])
    elif entry.spec.input.layout == "B,C,H,W":
        assert shape[1:] == (3, cfg["image_size"], cfg["image_size"])
    else:
        assert shape[1:] == (cfg["seq_len"], cfg["in_features"])
    assert entry.spec.num_classes == cfg["num_classes"]


@pytest.mark.parametrize("name", ["squeezetime_tiny", "emov2_tiny_video"])
def test_meta_device_stats_match_a_real_build(name):
    entry = next(e for e in plugin.ENTRIES if e.name == name)
    model = entry.build()
    assert model_stats(entry)["params"] == count_params(model)
    out = model(torch.zeros(entry.spec.input.shape))
    assert tuple(out.shape) == (1, entry.spec.num_classes)


def test_plugin_import_stays_light():
    code = "import sys, edgest_models.plugin; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
