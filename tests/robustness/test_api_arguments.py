"""Python callers get one BadInput line naming the argument for every wrong type, never a traceback from deep
inside (the outside round's API cases: None as a model, a number as a pass, bytes as a folder, ...)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput
from edgest.plan import plan

M, T = "squeezetime_tiny", "onnx"
CASES = [
    (dict(model=None, target=T), "model= must be"),
    (dict(model=M, target=None), "target= must be"),
    (dict(model=M, target=T, passes=[123]), "passes= item 123"),
    (dict(model=M, target=T, passes="quantize"), "passes= must be a list"),
    (dict(model=M, target=T, out_dir=b"/tmp/x"), "out_dir= must be a path"),
    (dict(model=M, target=T, weights=""), "weights= is empty"),
    (dict(model=M, target=T, input_shape=(1, 3, 4.5, 8, 8)), "input_shape= must be positive whole numbers"),
    (dict(model=M, target=T, input_shape=(1, 3, 0, 8, 8)), "input_shape= must be positive whole numbers"),
    (dict(model=M, target=T, seed=2**32), "seed= must be a whole number from 0 to 4294967295"),
    (dict(model=M, target=T, seed=-1), "seed= must be a whole number"),
    (dict(model=M, target=T, threads=1.5), "threads= must be a whole number"),
    (dict(model=M, target=T, check_timeout_s=float("nan")), "check_timeout_s= must be a finite number"),
    (dict(model=M, target=T, check_timeout_s=-1), "check_timeout_s= must be a finite number"),
    (dict(model=M, target="eager", target_options={"x": object()}), "target option x="),
    (dict(model=M, target="eager", target_options={"x": float("inf")}), "target option x="),
    (dict(model=M, target=T, target_options={"tvm:key": 1}), "the TARGET:KEY form is the CLI's"),
]


@pytest.mark.parametrize(("kwargs", "message"), CASES, ids=[m for _, m in CASES])
def test_a_wrong_argument_is_one_line_naming_it(kwargs: dict, message: str, tmp_path: Path) -> None:
    kwargs.setdefault("out_dir", tmp_path / "run")
    with pytest.raises(BadInput, match=re.escape(message)):
        plan(**kwargs)
    assert not (tmp_path / "run").exists()  # refused before anything is written


@pytest.mark.parametrize("kwargs", [dict(warmup=-1), dict(min_runs=-5), dict(max_runs=0),
                                    dict(min_seconds=float("nan")), dict(min_seconds=-1.0), dict(min_runs=2.5)])
def test_a_latency_protocol_that_cannot_be_run_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="LatencyConfig"):  # plain Python: the module also runs on devices
        LatencyConfig(**kwargs)


def test_the_defaults_and_a_quick_protocol_still_construct() -> None:
    assert LatencyConfig().min_runs == 30
    assert LatencyConfig(warmup=0, min_runs=1, min_seconds=0.0).warmup == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(models=[]), "models= must be a non-empty list"),
    (dict(targets="eager"), "targets= must be a non-empty list"),
    (dict(samples=0), "samples= must be a whole number of at least 1"),
    (dict(weights={"squeezetime_tiny": 5}), "weights['squeezetime_tiny']= must be a path"),
    (dict(out_dir=b"out"), "out_dir= must be a path"),
])
def test_run_bench_refuses_what_the_cli_refuses_before_writing(kwargs: dict, message: str, tmp_path: Path) -> None:
    from edgest.bench import run_bench

    args = dict(models=["squeezetime_tiny"], targets=["eager"], precisions=["fp32"], out_dir=tmp_path / "b")
    args.update(kwargs)
    with pytest.raises(BadInput, match=re.escape(message)):
        run_bench(args.pop("models"), args.pop("targets"), args.pop("precisions"), args.pop("out_dir"), **args)
    assert not (tmp_path / "b").exists()  # the outside round: an empty folder with a marker was left
