"""``--streaming``: a model's step module compiled as a plain (x_t, *state) program and checked over whole
sequences, its own state fed back, against the parallel model (issue 20).

Tiny LMUFormers on the eager target (the toolchain targets: tests/targets/test_streaming_targets.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import edgest
from edgest.checks.isolated import ChildOutcome
from edgest.errors import BadInput
from edgest.model import ModelEntry
from edgest.plan import plan
from edgest.plugins import get_registry
from edgest.records import Report
from edgest.streaming.check import streaming_check
from edgest.streaming.worker import stream_sequence

lmu = pytest.importorskip("edgest_models.lmuformer", reason="edgest-models not installed (pip install -e models)")

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)


def _compile(model: str, out: Path, **kw):
    return edgest.compile(model, "eager", out_dir=out, streaming=True, latency=FAST, samples=4, **kw)


def test_tiny_lmuformer_streams_and_documents_its_state(tmp_path):
    report = _compile("lmuformer_tiny", tmp_path / "run")
    check = report.check("streaming")
    assert report.status == "passed", report.error
    m = check.metrics
    assert check.status == "passed" and m["sqnr_db"] > 100 and m["top1_agreement"] == 1.0
    assert m["steps"] == 16 and len(m["per_step_sqnr_db"]) == 16 and m["sequences"] == 4
    assert m["hop_ms"] == 10.0 and m["real_time_factor"] == pytest.approx(m["step_p50_ms"] / 10.0)
    doc = json.loads((tmp_path / "run" / "streaming.json").read_text())
    assert doc["model"] == "lmuformer_tiny" and doc["artifact"] == report.artifact.path
    assert [t["name"] for t in doc["inputs"]] == ["x_t", "blocks_0_attn_lmu_memory", "logit_sum", "step_count"]
    assert [t["shape"] for t in doc["inputs"]] == [[1, 32], [1, 32], [1, 10], [1]]
    assert [t["name"] for t in doc["outputs"]] == ["out_t", "blocks_0_attn_lmu_memory_next", "logit_sum_next", "step_count_next"]
    assert {t["dtype"] for t in doc["inputs"] + doc["outputs"]} == {"float32"}
    assert [t["initial"] for t in doc["inputs"][1:]] == ["zeros"] * 3
    assert doc["state_feedback"] == [{"output": j, "input": j, "name": n} for j, n in
                                     enumerate(["blocks_0_attn_lmu_memory", "logit_sum", "step_count"], 1)]
    assert doc["steps"] == 16 and doc["step_seconds"] == 0.01 and doc["rate_hz"] == 100.0
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["streaming"]["inputs"] == doc["inputs"] and saved["model"]["step"] == "step_module"
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## Streaming interface" in md and "`blocks_0_attn_lmu_memory`" in md and "real-time factor" in md


def test_video_step_carries_the_rpe_window(tmp_path):
    report = _compile("lmuformer_video_tiny", tmp_path / "run")
    assert report.check("streaming").status == "passed", report.error
    names = [t["name"] for t in report.streaming["inputs"]]
    assert names[:2] == ["x_t", "rpe"] and report.streaming["inputs"][0]["shape"] == [1, 3, 64, 64]
    assert report.streaming["inputs"][1]["shape"] == [1, 32, 2] and report.streaming["step_seconds"] == 0.04


class _ForgetfulStep(lmu.LMUFormerStep):
    """Returns zeros as the next LMU memory: each step on its own is what it claims, the stream is not."""

    def forward(self, x, *state):
        out = super().forward(x, *state)
        return (out[0], torch.zeros_like(out[1]), *out[2:])


class _Forgetful(lmu.LMUFormer):
    """At the zoo's random init the LMU memory moves the logits by -80 dB, too little for any limit to see;
    a positive u (W_u bias 1) and a louder W_h make it matter (dropping it: ~15 dB)."""

    def __init__(self, **config):
        super().__init__(**config)
        with torch.no_grad():
            self.blocks[0].attn.lmu.W_u.bias.fill_(1.0)
            self.blocks[0].attn.lmu.W_h.weight.mul_(10.0)

    def step_module(self):
        return _ForgetfulStep(self)


def _forgetful(**config):
    return _Forgetful(**config)


def test_a_step_module_that_drops_its_state_fails_the_check(tmp_path):
    reg = get_registry()
    entry = reg.model("lmuformer_tiny")
    broken = ModelEntry(replace(entry.spec, name="forgetful_lmuformer"), _forgetful, dict(entry.shape_options))
    reg = replace(reg, models={**reg.models, "forgetful_lmuformer": broken})
    report = _compile("forgetful_lmuformer", tmp_path / "run", registry=reg)
    assert report.check("accuracy").status == "passed"  # one step with a given state is right
    check = report.check("streaming")
    assert check.status == "failed" and report.status == "failed"
    assert "streaming: SQNR" in check.reason and check.metrics["first_step_sqnr_db"] > 100


class _NoFeedback:
    """A runner wrapper that always passes the initial state instead of the one the artifact returned."""

    def __init__(self, step: torch.nn.Module, init: list[np.ndarray]) -> None:
        self.step, self.init = step, init

    def run(self, inputs):
        with torch.no_grad():
            y = self.step(torch.from_numpy(inputs[0]), *(torch.from_numpy(a) for a in self.init))
        return [t.numpy() for t in y]


def test_a_runner_that_does_not_feed_state_back_fails_the_check(tmp_path):
    from edgest.stages.build import build

    built = build(plan("lmuformer_tiny", "eager", out_dir=tmp_path / "run", streaming=True, samples=2))
    data = built.streaming

    class Fed(_NoFeedback):
        def run(self, inputs):
            with torch.no_grad():
                return [t.numpy() for t in self.step(*(torch.from_numpy(a) for a in inputs))]

    for runner, status in ((Fed(built.module, data.init), "passed"), (_NoFeedback(built.module, data.init), "failed")):
        outs = [stream_sequence(runner, q, data.init) for q in data.sequences]
        check = streaming_check(data, ChildOutcome(stream_outputs=outs, streaming={}), edgest.checks.accuracy.LIMITS["fp32"], 0)
        assert check.status == status, check.reason


def test_streaming_without_a_step_module_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="model 'squeezetime_tiny' has no step .streaming. module.*lmuformer_tiny"):
        plan("squeezetime_tiny", "eager", out_dir=tmp_path / "run", streaming=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEST_")}
    proc = subprocess.run([sys.executable, "-m", "edgest", "compile", "--model", "squeezetime_tiny", "--target", "eager",
                           "--streaming", "--out", str(tmp_path / "cli")], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("edgest: error: model 'squeezetime_tiny' has no step (streaming) module")
    assert not (tmp_path / "run").exists() and not (tmp_path / "cli").exists()


def test_reports_before_schema_1_2_read_without_streaming(tmp_path):
    report = _compile("lmuformer_tiny", tmp_path / "run")
    old = report.to_dict()
    old["schema_version"] = "1.1"
    del old["streaming"], old["model"]["step"]
    back = Report.from_dict(old)
    assert back.streaming == {} and back.model.step == "" and back.check("streaming").status == "passed"


def test_bench_cells_carry_per_step_latency(tmp_path):
    from edgest.bench import run_bench

    doc = run_bench(["lmuformer_tiny"], ["eager"], ["fp32"], tmp_path / "bench", streaming=True, latency=FAST, samples=2)
    (cell,) = doc["cells"]
    s = cell["streaming"]
    assert s["status"] == "passed" and s["hop_ms"] == 10.0 and s["real_time_factor"] == pytest.approx(s["step_p50_ms"] / 10.0)
    assert "per_step_sqnr_db" not in s and doc["settings"]["streaming"] is True
    md = (tmp_path / "bench" / "report.md").read_text()
    assert "## Streaming (step module, state carried)" in md and "| lmuformer_tiny | eager | fp32 | passed |" in md
    assert '<table id="streaming">' in (tmp_path / "bench" / "report.html").read_text()
