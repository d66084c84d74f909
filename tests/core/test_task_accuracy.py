"""Task top-1 on the labelled synthetic set: metric, limit (trained weights only), pipeline and report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgest
import edgest_models.plugin
import edgest_onnx.plugin
from edgest.checks import accuracy
from edgest.data.calibration import calibration_inputs
from edgest.pipeline import TASK_FIRST_CLIP, task_set
from edgest.plugins import new_plugin_manager
from edgest.records import InputSpec, ModelSpec


@pytest.fixture(scope="module")
def registry():
    pm = new_plugin_manager(entry_points=False)
    pm.add(edgest_models.plugin, "models")
    pm.add(edgest_onnx.plugin, "onnx")
    return pm.registry


def test_task_top1_and_its_limit():
    eye = np.eye(4, dtype=np.float32)
    labels = [np.array([0, 1]), np.array([2, 3])]
    eager = [eye[:2], eye[2:]]  # all right
    actual = [eye[:2], eye[[2, 0]]]  # one of four wrong
    m = accuracy.task_top1(eager, actual, labels)
    assert m == {"task_top1": 0.75, "task_top1_eager": 1.0, "task_top1_drop_pts": 25.0}
    base = {"sqnr_db": 30.0, "top1_agreement": 1.0}
    limits = {**accuracy.LIMITS["int8"], **accuracy.TASK_LIMITS["int8"]}
    assert accuracy.within({**base, **m}, limits) == ["task top-1 drop 25.0 pt > 1 pt"]
    assert accuracy.within({**base, **m}, accuracy.LIMITS["int8"]) == []  # untrained: reported, not judged
    assert accuracy.within({**base, "task_top1_drop_pts": 1.0}, limits) == []
    with pytest.raises(ValueError, match="1 label sets"):
        accuracy.task_top1(eager, actual, labels[:1])


def test_task_set_is_labelled_balanced_and_unseen():
    spec = ModelSpec("m", "f", InputSpec((1, 3, 4, 32, 32), layout="B,C,T,H,W"), num_classes=10)
    task = task_set(spec, 20, seed=0)
    assert len(task.inputs) == 20 and task.inputs[0][0].shape == (1, 3, 4, 32, 32)
    assert np.bincount(np.concatenate(task.labels)).tolist() == [2] * 10
    assert f"samples {TASK_FIRST_CLIP}+" in task.source
    calib = calibration_inputs(spec, 20, seed=0)  # calibration (and training) use the set's first clips
    assert not any(np.array_equal(t[0], c[0]) for t in task.inputs for c in calib.inputs)
    assert np.array_equal(task_set(spec, 3, seed=0).inputs[2][0], task.inputs[2][0])
    two = ModelSpec("m", "f", InputSpec((2, 3, 4, 32, 32), layout="B,C,T,H,W"), num_classes=3)
    assert task_set(two, 3, seed=0).labels[0].tolist() == [0, 1]
    assert task_set(spec, 0, seed=0) is None
    assert task_set(ModelSpec("m", "f", InputSpec((1, 3, 32, 32), layout="B,C,H,W"), 10), 8, 0) is None
    assert task_set(ModelSpec("m", "f", InputSpec((1, 3, 4, 32, 32), layout="B,C,T,H,W"), 0), 8, 0) is None


def test_compile_reports_task_accuracy(registry, tmp_path):
    report = edgest.compile("squeezetime_tiny", "onnx", out_dir=tmp_path / "fp32", samples=2, task_samples=10,
                            latency=None, registry=registry)
    acc = report.check("accuracy")
    assert report.status == "passed", report.error
    m = acc.metrics
    assert m["samples"] == 2 and m["task_samples"] == 10 and m["task_judged"] is False
    assert m["task_top1"] == m["task_top1_eager"] and m["task_top1_drop_pts"] == 0.0  # fp32 ONNX: same argmax
    assert "max_task_top1_drop_pts" not in acc.limits
    md = (tmp_path / "fp32" / "report.md").read_text()
    assert "Task top-1 on 10 synthetic motion clips" in md and "not judged: random initial weights" in md
    # agreement is judged pooled over the 2 random inputs and the 10 clips; both parts are reported
    assert m["top1_agreement"] == m["top1_agreement_inputs"] == m["task_top1_agreement"] == 1.0
    assert "1 on the random inputs" not in md and "100.0% on the labelled samples, 100.0% pooled" in md
    # reference.npz (for device bundles) holds the random-input outputs only
    assert len(np.load(tmp_path / "fp32" / "reference.npz").files) == 2


def test_task_drop_is_judged_for_int8_with_weights(registry, tmp_path):
    model = registry.model("squeezetime_tiny").build()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    report = edgest.compile("squeezetime_tiny", "onnx", weights=tmp_path / "w.pt", out_dir=tmp_path / "int8",
                            precision="int8", samples=2, task_samples=10, latency=None, registry=registry,
                            passes=[("quantize", {"calibration_size": 2})])
    acc = report.check("accuracy")
    assert acc.limits["max_task_top1_drop_pts"] == 1.0 and acc.metrics["task_judged"] is True
    drop = acc.metrics["task_top1_drop_pts"]
    assert (acc.status == "failed") == (drop > 1.0 or bool(accuracy.within({**acc.metrics, "task_top1_drop_pts": 0.0},
                                                                            acc.limits)))
    assert ("task top-1 drop" in acc.reason) == (drop > 1.0)
    md = (tmp_path / "int8" / "report.md").read_text()
    assert "(judged: int8 limit 1 pt, trained weights)" in md
    m = acc.metrics
    pooled = (2 * m["top1_agreement_inputs"] + 10 * m["task_top1_agreement"]) / 12
    assert m["top1_agreement"] == pytest.approx(pooled)
    # SQNR is pooled too: total signal over total noise, so it lies between the two parts (a mediant)
    parts = sorted((m["sqnr_db_inputs"], m["task_sqnr_db"]))
    assert parts[0] - 1e-9 <= m["sqnr_db"] <= parts[1] + 1e-9 and parts[0] < parts[1]
    assert f"SQNR: {m['sqnr_db_inputs']:.1f} dB on the random inputs, {m['task_sqnr_db']:.1f} dB on the labelled " in md
    # without weights the API skips the set unless asked (it would score chance level)
    off = edgest.compile("squeezetime_tiny", "onnx", out_dir=tmp_path / "off", samples=2, latency=None, registry=registry)
    assert "task_top1" not in off.check("accuracy").metrics
    with pytest.raises(edgest.BadInput, match="task_samples must be 0"):
        edgest.compile("squeezetime_tiny", "onnx", out_dir=tmp_path / "bad", task_samples=-1, registry=registry)


def test_fp32_with_weights_says_why_the_drop_is_not_judged(registry, tmp_path):
    model = registry.model("squeezetime_tiny").build()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    report = edgest.compile("squeezetime_tiny", "onnx", weights=tmp_path / "w.pt", out_dir=tmp_path / "fp32",
                            samples=2, task_samples=4, latency=None, registry=registry)
    m = report.check("accuracy").metrics
    assert m["task_judged"] is False and m["task_note"] == "not judged: no task-accuracy limit for fp32"
    line = next(t for t in (tmp_path / "fp32" / "report.md").read_text().splitlines() if t.startswith("Task top-1"))
    assert "(not judged: no task-accuracy limit for fp32)" in line and "initial weights" not in line


def test_bench_markdown_shows_task_columns_only_when_measured():
    from edgest.report.bench_writers import render_bench_markdown

    cell = {"model": "m", "target": "onnx", "precision": "int8", "passes": [], "status": "passed", "latency": {"p50_ms": 1.0},
            "artifact": {"size_bytes": 10}, "speedup_vs_eager": None, "accuracy": {"sqnr_db": 30.0, "top1_agreement": 1.0}}
    doc = {"created": "now", "host": {"cpu": "c", "cpu_count": 2}, "settings": {"threads": 1}, "device_results": [],
           "cells": [cell]}
    assert "task top-1" not in render_bench_markdown(doc)
    trained = {**cell, "accuracy": {**cell["accuracy"], "task_top1": 0.8, "task_top1_drop_pts": 1.5}}
    md = render_bench_markdown({**doc, "cells": [trained, cell]}).splitlines()
    assert md[4].endswith("| task top-1 | task drop pt |")
    assert md[6].endswith("| 80.0% | 1.5 |") and md[7].endswith("| – | – |")
