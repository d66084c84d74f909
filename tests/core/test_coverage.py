"""Op coverage (``edgest check``) in the core: records, mapping back to captured ops, the orchestrator, "not known"."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import edgest
from edgest import hookimpl
from edgest.coverage import Coverage, judged, op_key, origins, source_line
from edgest.errors import UnknownName
from edgest.plugins import new_plugin_manager
from edgest.preflight import check

sys.path.insert(0, str(Path(__file__).parent))
import throwaway_plugin


class ConvCumsum(torch.nn.Module):
    """Conv, then a cumulative sum: the op the fake target below cannot run natively."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        y = torch.cumsum(y, 2)
        return self.fc(y.mean((2, 3)))


class NoCumsumTarget(throwaway_plugin.PickleTarget):
    """Says cumsum falls back and everything else is native, judging the core ATen form of the program."""

    name = "no-cumsum"

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        decomposed = program.run_decompositions()

        def judge(node: torch.fx.Node) -> tuple[str, str] | None:
            return ("fallback", "no cumsum kernel") if "cumsum" in str(node.target) else ("native", "")

        return judged(self.name, program, decomposed.graph, judge, "fake toolchain")


class BrokenTarget(throwaway_plugin.PickleTarget):
    name = "broken-coverage"

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        raise RuntimeError("toolchain crashed\nsecond line")


class DyingTarget(throwaway_plugin.PickleTarget):
    """Its toolchain kills the process while answering (only ever asked in a child process)."""

    name = "dying-coverage"

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        import os

        os._exit(3)


class PidTarget(NoCumsumTarget):
    """Answers as no-cumsum does, naming the process that asked it in its note."""

    name = "pid-coverage"

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        import os

        return replace(super().coverage(program), note=str(os.getpid()))


class PidTarget2(PidTarget):
    name = "pid-coverage-2"


class GraphEatingTarget(throwaway_plugin.PickleTarget):
    """Its toolchain empties the program's graph in place (what a copy must protect the next target from)."""

    name = "graph-eating"

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        graph = program.graph
        for node in reversed(list(graph.nodes)):
            if node.op == "call_function":
                node.replace_all_uses_with(next(n for n in graph.nodes if n.op == "placeholder"))
                graph.erase_node(node)
        return Coverage(self.name, (), "ate the graph")


class TableTarget(NoCumsumTarget):
    """Its runtime is missing here, but its coverage comes from a table (``coverage_needs_runtime`` False)."""

    name = "table-coverage"
    requires = ("edgest_no_such_runtime",)
    coverage_needs_runtime = False


class RuntimeTarget(TableTarget):
    """The same, with the contract's default: coverage needs the runtime."""

    name = "runtime-coverage"
    coverage_needs_runtime = True


@hookimpl
def register_targets(register):
    register(NoCumsumTarget)
    register(BrokenTarget)
    register(DyingTarget)
    register(PidTarget)
    register(PidTarget2)
    register(GraphEatingTarget)
    register(TableTarget)
    register(RuntimeTarget)


@pytest.fixture(scope="module")
def registry():
    pm = new_plugin_manager(entry_points=False)
    pm.add(throwaway_plugin, "throwaway")
    pm.add(SimpleNamespace(register_targets=register_targets), "coverage-test")
    return pm.registry


@pytest.fixture(scope="module")
def program():
    return torch.export.export(ConvCumsum().eval(), (torch.randn(1, 3, 8, 8),), strict=False)


def test_origins_map_decomposed_nodes_back_to_the_captured_op(program):
    decomposed = program.run_decompositions()
    back = origins(program, decomposed.graph)
    captured = {n.name: op_key(n) for n in program.graph.nodes if n.op == "call_function"}
    made_from_linear = [n.name for n in decomposed.graph.nodes if back.get(n.name) and captured[back[n.name]] == "aten.linear.default"]
    assert made_from_linear, "linear decomposes (addmm, permute) and each piece maps back to it"
    assert {captured[v] for v in back.values()} <= set(captured.values())


def test_judged_gives_the_worst_verdict_per_captured_op_with_counts_and_sources(program):
    cov = NoCumsumTarget().coverage(program)
    assert cov.verdicts("aten.cumsum") == {"fallback": 1}
    assert cov.verdicts("aten.conv2d.default") == {"native": 1}
    cumsum = next(o for o in cov.ops if o.op.startswith("aten.cumsum"))
    assert cumsum.note == "no cumsum kernel"
    assert cumsum.where and "test_coverage.py:" in cumsum.where[0], "the source line of torch.cumsum in forward"
    assert cov.summary()["fallback"] == 1
    assert sum(cov.summary().values()) == sum(o.count for o in cov.ops)


def test_source_line_names_the_file_line_and_module(program):
    conv = next(n for n in program.graph.nodes if op_key(n) == "aten.conv2d.default")
    assert source_line(conv).startswith("test_coverage.py:") and source_line(conv).endswith("(conv)")


def test_check_asks_each_target_once_on_one_capture(registry):
    result = check(ConvCumsum(), ["no-cumsum", "throwaway", "broken-coverage"], input_shape=(1, 3, 8, 8), registry=registry)
    ops = [o["op"] for o in result.ops]
    assert "aten.cumsum.default" in ops and "aten.conv2d.default" in ops
    assert result.coverage["no-cumsum"].verdicts("aten.cumsum") == {"fallback": 1}
    # a third-party target without coverage: not known, and says so
    assert result.coverage["throwaway"].status == "not known"
    assert "does not report op coverage" in result.coverage["throwaway"].note
    # a target whose toolchain crashes while answering: failed, with the first line, the others still answered
    assert result.coverage["broken-coverage"].status == "failed"
    assert "RuntimeError: toolchain crashed" in result.coverage["broken-coverage"].note
    doc = result.to_dict()
    assert set(doc) >= {"model", "input_shape", "precision", "ops", "targets"}
    assert doc["targets"]["no-cumsum"]["summary"] == {"native": sum(o["count"] for o in result.ops) - 1, "fallback": 1}


def test_check_refuses_unknown_targets_and_precisions_before_capturing(registry):
    with pytest.raises(UnknownName, match="no-such-target"):
        check(ConvCumsum(), ["no-such-target"], input_shape=(1, 3, 8, 8), registry=registry)
    with pytest.raises(UnknownName, match="int3"):
        check(ConvCumsum(), ["no-cumsum"], precision="int3", input_shape=(1, 3, 8, 8), registry=registry)


def test_a_precision_the_target_lacks_is_skipped_not_an_error(registry):
    result = check(ConvCumsum(), ["no-cumsum"], precision="int8", input_shape=(1, 3, 8, 8), registry=registry)
    assert result.coverage["no-cumsum"].status == "skipped"
    assert "int8" in result.coverage["no-cumsum"].note


def test_a_target_whose_coverage_needs_no_runtime_answers_while_unavailable(registry):
    result = check(ConvCumsum(), ["table-coverage", "runtime-coverage"], input_shape=(1, 3, 8, 8), registry=registry)
    table, runtime = result.coverage["table-coverage"], result.coverage["runtime-coverage"]
    assert table.status == "known" and table.verdicts("aten.cumsum") == {"fallback": 1}
    assert table.note == "fake toolchain; runtime unavailable here: edgest_no_such_runtime not installed"
    assert runtime.status == "unavailable" and runtime.ops == ()
    assert runtime.note == "edgest_no_such_runtime not installed"


def test_the_contract_default_is_not_known():
    assert edgest.Target.coverage(throwaway_plugin.PickleTarget(), None) is None


def test_the_report_section_lists_the_ops_a_target_does_not_run_natively(registry):
    from edgest.report.coverage import coverage_markdown, target_summary

    result = check(ConvCumsum(), ["no-cumsum", "throwaway"], input_shape=(1, 3, 8, 8), registry=registry)
    lines = coverage_markdown(result, only_problems=True)
    assert lines[0] == "## Op coverage"
    assert "| op | nodes | source | no-cumsum |" in lines
    rows = [line for line in lines if line.startswith("| cumsum")]
    assert len(rows) == 1 and rows[0].endswith("| fallback |")
    assert not any(line.startswith("| conv2d") for line in lines), "only the problem rows"
    assert "- throwaway: not known (target 'throwaway' does not report op coverage)" in lines
    assert target_summary(result.coverage["no-cumsum"])["not_native"] == ["cumsum: fallback"]


def test_check_in_child_processes_gives_the_same_answers(registry):
    one = check(ConvCumsum(), ["no-cumsum", "broken-coverage", "throwaway"], input_shape=(1, 3, 8, 8), registry=registry)
    two = check(ConvCumsum(), ["no-cumsum", "broken-coverage", "throwaway"], input_shape=(1, 3, 8, 8), registry=registry,
                jobs=2)
    assert two.coverage["no-cumsum"].ops == one.coverage["no-cumsum"].ops
    assert two.coverage["broken-coverage"].status == "failed" and "toolchain crashed" in two.coverage["broken-coverage"].note
    assert two.coverage["throwaway"].status == "not known"
    assert list(two.coverage) == ["no-cumsum", "broken-coverage", "throwaway"]


def test_a_child_that_dies_while_answering_marks_only_its_target_failed(registry):
    result = check(ConvCumsum(), ["dying-coverage", "no-cumsum"], input_shape=(1, 3, 8, 8), registry=registry, jobs=2)
    assert result.coverage["dying-coverage"].status == "failed"
    assert "died (exit code 3)" in result.coverage["dying-coverage"].note
    assert result.coverage["no-cumsum"].verdicts("aten.cumsum") == {"fallback": 1}


def test_workers_ask_one_target_after_another_and_a_death_loses_only_the_target_it_was_asking(registry):
    import os

    names = ["pid-coverage", "dying-coverage", "no-cumsum", "pid-coverage-2", "broken-coverage"]
    result = check(ConvCumsum(), names, input_shape=(1, 3, 8, 8), registry=registry, jobs=2)
    assert list(result.coverage) == names
    assert result.coverage["dying-coverage"].status == "failed" and "died (exit code 3)" in result.coverage["dying-coverage"].note
    assert result.coverage["broken-coverage"].status == "failed"
    assert result.coverage["no-cumsum"].verdicts("aten.cumsum") == {"fallback": 1}
    pids = {result.coverage[n].note for n in ("pid-coverage", "pid-coverage-2")}
    assert str(os.getpid()) not in pids
    assert all(result.coverage[n].verdicts("aten.cumsum") == {"fallback": 1} for n in ("pid-coverage", "pid-coverage-2"))


def test_a_worker_gives_each_target_but_its_last_a_copy_of_the_program(program):
    from edgest.coverage_workers import ask_in_workers
    from edgest.preflight import _timed

    asked = []
    out = ask_in_workers([GraphEatingTarget(), PidTarget(), GraphEatingTarget()], program, None, 1, _timed, asked.append)
    assert asked == ["graph-eating", "pid-coverage", "graph-eating"]
    assert out["pid-coverage"][0].verdicts("aten.cumsum") == {"fallback": 1}, "the graph-eater before it had a copy"
    assert out["graph-eating"][0].note == "ate the graph"
    assert any(n.op == "call_function" for n in program.graph.nodes), "the parent's program is the worker's fork"


def test_one_worker_asks_every_target_in_one_process(program):
    import os

    from edgest.coverage_workers import ask_in_workers
    from edgest.preflight import _timed

    out = ask_in_workers([PidTarget(), PidTarget2()], program, None, 1, _timed)
    assert out["pid-coverage"][0].note == out["pid-coverage-2"][0].note != str(os.getpid())
