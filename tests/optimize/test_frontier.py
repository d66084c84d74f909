"""The search space and the frontier on made-up cells: what qualifies, the Pareto flag, finalists, the no-winner line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from edgest.bench import Budget
from edgest.errors import BadInput
from edgest.optimize.frontier import frontier, no_winner_reason
from edgest.optimize.search import merge
from edgest.optimize.space import Group, SearchSpace, build_space, default_precisions
from edgest.plugins import Registry
from edgest.targets.eager import EagerTarget


def cell(target: str, precision: str, p50: float | None, sqnr: float, *, acc: str = "passed", status: str = "passed",
         agree: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "target": target, "precision": precision, "passes": [], "status": status, "cached": False,
            "run_dir": f"cells/m__{target}__{precision}", "in_matrix": True, "error": "",
            "accuracy": {"sqnr_db": sqnr, "top1_agreement": agree, "max_abs": 0.1, "status": acc,
                         "limits": {"min_sqnr_db": 15.0, "min_top1_agreement": 0.95}},
            "latency": {"p50_ms": p50, "status": "passed"} if p50 else {"status": "not_run"},
            "artifact": {"size_bytes": 1}, **extra}


CELLS = [cell("a", "fp32", 10.0, 90.0), cell("a", "int8", 4.0, 25.0), cell("b", "int8", 3.0, 12.0, acc="failed"),
         cell("b", "fp32", 12.0, 80.0), cell("c", "fp32", None, 100.0)]


def test_a_cell_that_failed_its_accuracy_check_never_qualifies():
    rows = {(r["target"], r["precision"]): r for r in frontier(CELLS, Budget())}
    assert not rows["b", "int8"]["within_budget"]
    assert rows["b", "int8"]["reasons"] == ["accuracy check failed (SQNR 12.0 dB < 15 dB)"]
    assert not rows["c", "fp32"]["within_budget"] and "not timed on this host" in rows["c", "fp32"]["reasons"][0]
    assert [k for k, r in rows.items() if r["finalist"]] == [("a", "fp32"), ("a", "int8"), ("b", "fp32")]
    # the front: the fastest (unfaithful, but timed) b int8, then a int8, then a fp32; b fp32 is beaten by a fp32
    assert {k for k, r in rows.items() if r["pareto"]} == {("b", "int8"), ("a", "int8"), ("a", "fp32")}


def test_a_pass_that_changed_nothing_is_not_a_candidate_of_its_own():
    same, other = {"size_bytes": 1, "sha256": "ab" * 32}, {"size_bytes": 1, "sha256": "cd" * 32}
    cells = [cell("a", "fp32", 10.0, 90.0, artifact=same),
             cell("a", "fp32", 9.0, 90.0, passes=["attention-to-conv"], artifact=same),  # faster by noise alone
             cell("a", "fp32", 8.0, 90.0, passes=["fuse-bn"], artifact=other),
             cell("b", "fp32", 7.0, 90.0, passes=["attention-to-conv"], artifact=same)]  # another target: its own
    rows = {(r["target"], tuple(r["passes"])): r for r in frontier(cells, Budget())}
    unchanged = rows["a", ("attention-to-conv",)]
    assert not unchanged["within_budget"] and not unchanged["finalist"]
    assert unchanged["reasons"] == ["the same artifact as a fp32: attention-to-conv changed nothing"]
    assert rows["a", ()]["within_budget"] and rows["a", ("fuse-bn",)]["within_budget"]
    assert rows["b", ("attention-to-conv",)]["within_budget"]


def test_a_budget_narrows_the_finalists_and_names_the_fix_when_nothing_is_left():
    rows = frontier(CELLS, Budget(min_sqnr_db=85), finalists=1)
    assert [(r["target"], r["precision"]) for r in rows if r["finalist"]] == [("a", "fp32")]
    assert "SQNR 80.0 dB < 85 dB" in next(r for r in rows if r["target"] == "b" and r["precision"] == "fp32")["reasons"]
    none = frontier(CELLS, Budget(min_sqnr_db=300))
    assert not any(r["finalist"] for r in none)
    assert no_winner_reason(none, Budget(min_sqnr_db=300)) == \
        "no cell reaches --min-sqnr 300 dB (the best reaches 90.0 dB); loosen --min-sqnr"
    slow = frontier(CELLS, Budget(max_latency_ms={"*": 1.0}))
    assert "loosen --max-latency-ms" in no_winner_reason(slow, Budget(max_latency_ms={"*": 1.0}))


def test_merge_keeps_each_cell_once_and_one_reference():
    ref = {**cell("eager", "fp32", 50.0, 120.0), "in_matrix": False}
    docs = [{"settings": {"targets": ["a"]}, "cells": [CELLS[0], CELLS[1], ref]},
            {"settings": {"targets": ["b"]}, "cells": [CELLS[3], dict(ref)]}]
    merged = merge(docs, SearchSpace((Group(("fp32", "int8"), ("a",)), Group(("fp32",), ("b",)))))
    assert [(c["target"], c["precision"]) for c in merged["cells"]] == [("a", "fp32"), ("a", "int8"), ("b", "fp32"), ("eager", "fp32")]
    assert merged["settings"]["targets"] == ["a", "b"] and merged["cells"][-1]["reference"]
    assert merged["cells"][1]["speedup_vs_eager"] == 12.5


class Ghost(EagerTarget):
    name: ClassVar[str] = "ghost"
    requires: ClassVar[tuple[str, ...]] = ("edgest_no_such_runtime",)
    install_hint: ClassVar[str] = "pip install ghost"


class Half(EagerTarget):
    name: ClassVar[str] = "half"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")


def test_space_groups_targets_by_precision_and_lists_what_it_skips():
    reg = Registry(targets={"eager": EagerTarget, "ghost": Ghost, "half": Half})
    space = build_space(reg, None, None, capabilities={"bf16": True, "fp16": False})
    assert space.groups == (Group(("fp32",), ("eager",)), Group(("fp32", "bf16"), ("half",)))
    assert space.skipped == ("ghost: unavailable: edgest_no_such_runtime not installed (pip install ghost)",)
    asked = build_space(reg, ["half", "eager"], ["fp32", "int8"])
    assert asked.groups == (Group(("fp32",), ("half", "eager")),)
    assert asked.skipped == ("half int8: not supported (it supports fp32, fp16, bf16)",
                             "eager int8: not supported (it supports fp32)")
    assert default_precisions({"bf16": False, "fp16": True}) == ["fp32", "int8", "fp16"]


def test_a_space_with_nothing_available_is_bad_input():
    reg = Registry(targets={"ghost": Ghost})
    with pytest.raises(BadInput, match="nothing to search: no target is available here .ghost: unavailable"):
        build_space(reg, ["ghost"], None)


def test_a_retime_that_cannot_run_leaves_the_bench_fastest_as_winner_and_says_why(tmp_path):
    from edgest.optimize.retiming import retime_finalists

    rows = frontier(CELLS, Budget())
    note = retime_finalists(rows, tmp_path, threads=1)  # no run folders here: the finalists cannot be loaded
    assert note.startswith("re-time in turns failed (BadInput: ") and note.endswith("the winner is the fastest in the bench")
    assert [(r["target"], r["precision"]) for r in rows if r["winner"]] == [("a", "int8")]


class _PoolOncePerProcess:
    """A target whose runtime sizes its thread pool on the first load in a process (as ExecuTorch's does)."""

    pool: int | None = None

    def __init__(self, **_: object) -> None:
        pass

    def load(self, path: object, threads: int) -> object:
        cls = type(self)
        cls.pool = cls.pool or threads
        return type("Runner", (), {"threads": cls.pool, "run": lambda self, xs: xs})()


class _Registry:
    def target(self, name: str) -> type:
        return _PoolOncePerProcess


def test_a_runtime_that_runs_fewer_threads_than_asked_is_not_timed_as_if_it_did(monkeypatch):
    """Timing it at 2 threads after 1 in one process would report a one-thread figure as a two-thread one."""
    from edgest.checks.retime import Compiled, retime

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    art = {"a": Compiled("once", Path("model.bin"), (1, 2))}
    assert retime(art, threads=1, rounds=1, registry=_Registry())["a"]["p50_ms"] >= 0
    with pytest.raises(RuntimeError, match="runs 1 thread\\(s\\), not 2: .* time each thread count in its own process"):
        retime(art, threads=2, rounds=1, registry=_Registry())


@pytest.mark.parametrize(("asked", "runs", "cores"), [(4, 2, 2), (2, 0, 8), (2, 2, 8)])
def test_a_runtime_capped_at_the_cores_or_choosing_its_own_count_is_timed(monkeypatch, asked, runs, cores):
    """OpenVINO caps INFERENCE_NUM_THREADS at the host's cores; 0 is the contract's "the runtime chooses"."""
    from edgest.checks.retime import _check_threads

    monkeypatch.setattr("os.cpu_count", lambda: cores)
    _check_threads("t", runs, asked)  # no error
    with pytest.raises(RuntimeError, match="runs 1 thread"):
        _check_threads("t", 1, asked)
