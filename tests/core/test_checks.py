"""Accuracy metrics and the latency protocol."""

from __future__ import annotations

import os

import numpy as np
import pytest

from edgest.checks import accuracy
from edgest.checks.latency import LatencyConfig, measure, measure_interleaved


def test_identical_outputs_are_capped_and_agree():
    ref = [np.arange(10, dtype=np.float32).reshape(1, 10)]
    m = accuracy.compare(ref, [r.copy() for r in ref])
    assert m["sqnr_db"] == accuracy.SQNR_CAP_DB and m["max_abs"] == 0.0 and m["top1_agreement"] == 1.0


def test_sqnr_and_errors_match_their_definitions():
    rng = np.random.default_rng(1)
    ref = [rng.standard_normal((1, 5)).astype(np.float32) for _ in range(4)]
    act = [r + 0.01 for r in ref]
    m = accuracy.compare(ref, act)
    signal = sum(float(np.sum(r.astype(np.float64) ** 2)) for r in ref)
    noise = sum(float(np.sum((a.astype(np.float64) - r) ** 2)) for r, a in zip(ref, act))
    assert m["sqnr_db"] == pytest.approx(10 * np.log10(signal / noise), rel=1e-6)
    assert m["max_abs"] == pytest.approx(0.01, rel=1e-4) and m["mean_abs"] == pytest.approx(0.01, rel=1e-4)


def test_top1_agreement_counts_rows():
    ref = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])]
    act = [np.array([[0.0, 1.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])]
    assert accuracy.compare(ref, act)["top1_agreement"] == 0.75


def test_limits_report_what_broke():
    broken = accuracy.within({"sqnr_db": 30.0, "top1_agreement": 0.5}, accuracy.LIMITS["fp32"])
    assert broken == ["SQNR 30.0 dB < 40.0 dB", "top-1 agreement 50.0% < 100%"]
    assert accuracy.within({"sqnr_db": 41.0, "top1_agreement": 1.0}, accuracy.LIMITS["fp32"]) == []


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differs from the reference"):
        accuracy.compare([np.zeros((1, 3))], [np.zeros((1, 4))])


def test_seeded_inputs_are_reproducible_and_fresh():
    a = accuracy.seeded_inputs([(1, 3)], 8, seed=5)
    b = accuracy.seeded_inputs([(1, 3)], 8, seed=5)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
    assert len({x[0].tobytes() for x in a}) == 8


def test_latency_protocol_runs_warmup_then_at_least_min_runs():
    calls = []
    stats = measure(lambda: calls.append(1), LatencyConfig(warmup=5, min_runs=30, min_seconds=0.0))
    assert len(calls) == 35 and stats["runs"] == 30 and stats["warmup"] == 5
    assert 0 <= stats["p50_ms"] <= stats["p90_ms"]


def test_runs_just_made_count_toward_the_warm_up():
    calls = []
    stats = measure(lambda: calls.append(1), LatencyConfig(warmup=5, min_runs=30, min_seconds=0.0), warm=3)
    assert len(calls) == 32 and stats["warmup"] == 5  # two more to reach the protocol's five
    calls.clear()
    stats = measure(lambda: calls.append(1), LatencyConfig(warmup=5, min_runs=30, min_seconds=0.0), warm=8)
    assert len(calls) == 30 and stats["warmup"] == 8  # eight runs before the timed ones, none added
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="whole number of runs"):
            measure(lambda: None, LatencyConfig(warmup=1, min_runs=1, min_seconds=0.0), warm=bad)


def test_a_checks_accuracy_runs_of_the_same_shapes_are_its_warm_up(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import crashy_targets

    from edgest.checks.isolated import run_in_child

    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"the artifact\n")
    cfg = LatencyConfig(warmup=2, min_runs=3, min_seconds=0.0)
    same = [[np.full((2, 8), i, np.float32)] for i in range(4)]
    outcome = run_in_child(crashy_targets.EchoTarget(), artifact, same, latency=cfg)
    assert outcome.latency["warmup"] == 4 and outcome.latency["runs"] == 3  # the 4 accuracy runs, none added
    mixed = same[:3] + [[np.zeros((3, 8), np.float32)]] * 2  # the timed input is the first one's shape
    outcome = run_in_child(crashy_targets.EchoTarget(), artifact, mixed, latency=cfg)
    assert outcome.latency["warmup"] == 3  # the runs of another shape do not count


def test_interleaved_runs_take_turns_in_rotating_order():
    order = []
    cfg = LatencyConfig(warmup=1, min_runs=2, min_seconds=0.0)
    stats = measure_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, rounds=3, cfg=cfg)
    turns = [order[i] for i in range(0, len(order), 3)]  # one warm-up and two timed calls per turn
    assert turns == ["a", "b", "b", "a", "a", "b"] and len(order) == 18
    assert stats["a"]["rounds"] == 3 and stats["a"]["min_p50_ms"] <= stats["a"]["p50_ms"] <= stats["a"]["max_p50_ms"]
    with pytest.raises(ValueError, match="rounds"):
        measure_interleaved({"a": lambda: None}, rounds=0)


def test_a_constant_reference_is_named_so_the_check_cannot_pass_on_it():
    zeros = [np.zeros((1, 4), np.float32)] * 3
    assert accuracy.constant_reference(zeros) == "the eager output is all zeros on every one of the 3 inputs"
    same = [np.array([[1.0, 2.0]], np.float32)] * 2
    assert accuracy.constant_reference(same) == "the eager output is the same for all 2 inputs"
    nearly = [np.array([[1.0, 2.0]], np.float32), np.array([[1.0, 2.0 + 4e-7]], np.float32)]  # EMOv2 at init
    assert accuracy.constant_reference(nearly) == "the eager output is the same to 2e-07 of its scale for all 2 inputs"
    varied = [np.array([[1.0, 2.0]], np.float32), np.array([[1.0, 2.001]], np.float32)]
    assert accuracy.constant_reference(varied) is None and accuracy.constant_reference(same[:1]) is None


def test_compile_of_a_silent_model_is_incomplete_not_passed(tmp_path):
    import torch

    import edgest

    class Silent(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x - 100.0)  # zero for any input the check draws

    report = edgest.compile(Silent(), "eager", input_shape=(1, 4), out_dir=tmp_path / "run", latency=None)
    acc = report.check("accuracy")
    assert report.status == "incomplete" and acc.status == "not_run"
    assert acc.reason.startswith("not judged: the eager output is all zeros on every one of the 8 inputs")
    assert acc.metrics["sqnr_db"] == accuracy.SQNR_CAP_DB  # the figures are still reported


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="os.sched_getaffinity is Linux-only")
def test_more_threads_than_usable_cores_is_warned(monkeypatch):
    from edgest.checks import run as checks_run

    said: list[str] = []
    monkeypatch.setattr("edgest.progress.warn", said.append)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # e.g. taskset -c 0, or a container's cpuset
    monkeypatch.setattr(checks_run, "_WARNED", set())
    checks_run._warn_oversubscribed(1)
    assert said == []
    checks_run._warn_oversubscribed(2)
    checks_run._warn_oversubscribed(2)  # a bench's next cell: said once
    assert said == [("--threads 2 is more than the 1 core(s) this process may use: the latency figures time threads "
                     "contending for them; give at most that many")]
