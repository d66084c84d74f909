"""TensorRT target (targets/tensorrt): without TensorRT (no NVIDIA GPU here) the target is listed as
unavailable and the CLI refuses in one line; the ONNX pre-flight check runs everywhere."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper

import edgest
import edgest.preflight
import edgest_models.plugin
import edgest_tensorrt.plugin
from edgest.capture import capture
from edgest.errors import BadInput, Unsupported
from edgest.plugins import new_plugin_manager
from edgest.testing import TargetConformance
from edgest_tensorrt import check_onnx_for_tensorrt, prepare_onnx, supported_ops
from edgest_tensorrt.target import TensorRTTarget

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
HAS_TRT = find_spec("tensorrt") is not None
trt_runtime = pytest.mark.skipif(
    not HAS_TRT, reason="TensorRT runtime not installed: it needs an NVIDIA GPU; pip install tensorrt")
no_trt = pytest.mark.skipif(HAS_TRT, reason="checks the behaviour where tensorrt is not installed")
_ENV_DROP = ("EDGEST_LOAD_PLUGINS", "EDGEST_DISABLE_PLUGIN_AUTOLOAD", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


class TestTensorRTConformance(TargetConformance):
    target_name = "tensorrt"


def _edgest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    return subprocess.run([sys.executable, "-m", "edgest", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def registry():
    pm = new_plugin_manager(entry_points=False)
    pm.add(edgest_models.plugin, "models")
    pm.add(edgest_tensorrt.plugin, "tensorrt")
    return pm.registry


@no_trt
def test_listed_as_unavailable_with_the_install_hint(tmp_path):
    proc = _edgest(tmp_path, "list", "targets", "--json")
    assert proc.returncode == 0, proc.stderr
    row = next(t for t in json.loads(proc.stdout)["targets"] if t["name"] == "tensorrt")
    assert row["available"] == "no: tensorrt not installed (pip install tensorrt (needs an NVIDIA GPU and driver))"
    assert row["format"] == "plan" and row["precisions"] == "fp32,fp16"


@no_trt
def test_cli_compile_refuses_in_one_line_and_writes_nothing(tmp_path):
    proc = _edgest(tmp_path, "compile", "--model", "squeezetime_tiny", "--target", "tensorrt", "--out", "run")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "edgest: error: target 'tensorrt' unavailable: tensorrt not installed "
        "(pip install tensorrt (needs an NVIDIA GPU and driver))"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model", ["squeezetime_tiny", "emov2_tiny_video", "vivit_fa_tiny"])
def test_prepare_onnx_zoo_models_have_no_problems(registry, tmp_path, model):
    entry = registry.model(model)
    torch.manual_seed(0)
    x = torch.randn(*entry.spec.input.shape)
    path, problems = prepare_onnx(capture(entry.build(), (x,)), (x,), tmp_path)
    assert path == tmp_path / "model.onnx" and path.is_file()
    assert problems == []
    graph = onnx.load(str(path)).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == list(entry.spec.input.shape)
    assert {n.op_type for n in graph.node} <= supported_ops.SUPPORTED


def _save(tmp_path: Path, name: str, nodes, inputs, outputs, opset: int = 17, **kw) -> Path:
    graph = helper.make_graph(nodes, name, inputs, outputs, **kw)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _vi(name: str, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_unsupported_op_is_flagged_by_name(tmp_path):
    path = _save(tmp_path, "unique", [helper.make_node("Unique", ["x"], ["y"], name="dedupe")],
                 [_vi("x", [8])], [_vi("y", [8])])
    problems = check_onnx_for_tensorrt(path)
    assert any("op Unique (node 'dedupe') is not supported by TensorRT" in p for p in problems), problems


def test_unsupported_op_inside_an_if_branch_is_flagged(tmp_path):
    then_g = helper.make_graph([helper.make_node("Unique", ["x"], ["t"], name="inner")], "then", [], [_vi("t", [4])])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [_vi("e", [4])])
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g, name="branch")]
    path = _save(tmp_path, "branch", nodes, [_vi("c", [], TensorProto.BOOL), _vi("x", [4])], [_vi("y", [4])])
    problems = check_onnx_for_tensorrt(path)
    assert any(p.startswith("op Unique (node 'inner' in If 'branch'.then_branch)") for p in problems), problems


def test_data_dependent_and_dynamic_shapes_are_flagged(tmp_path):
    nodes = [helper.make_node("NonZero", ["x"], ["idx"], name="nz"), helper.make_node("Cast", ["idx"], ["y"], to=TensorProto.FLOAT)]
    problems = check_onnx_for_tensorrt(_save(tmp_path, "nonzero", nodes, [_vi("x", [2, 4])], [_vi("y", [2, "n"])]))
    assert any("op NonZero (node 'nz') has a data-dependent output shape" in p for p in problems), problems
    assert any(p.startswith("output 'y' has a dynamic shape 2xn") for p in problems), problems

    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    problems = check_onnx_for_tensorrt(_save(tmp_path, "batch", nodes, [_vi("x", ["batch", 3, 8, 8])], [_vi("y", ["batch", 3, 8, 8])]))
    assert any(p.startswith("input 'x' has a dynamic shape batchx3x8x8") for p in problems), problems


def test_restrictions_opset_and_domains_are_flagged(tmp_path):
    pool = [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2], name="pool1d")]
    problems = check_onnx_for_tensorrt(_save(tmp_path, "pool", pool, [_vi("x", [1, 3, 8])], [_vi("y", [1, 3, 7])]))
    assert problems == ["MaxPool node 'pool1d': TensorRT pools 2D or 3D inputs only, this one is 1D"]

    resize = [helper.make_node("Resize", ["x", "", "s"], ["y"], mode="cubic", name="up")]
    scales = helper.make_tensor("s", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    problems = check_onnx_for_tensorrt(_save(tmp_path, "resize", resize, [_vi("x", [1, 1, 4, 4])],
                                             [_vi("y", [1, 1, 8, 8])], initializer=[scales]))
    assert any("Resize node 'up': TensorRT resizes with mode nearest or linear, not 'cubic'" in p for p in problems)

    custom = helper.make_graph([helper.make_node("Foo", ["x"], ["y"], domain="com.example", name="foo")], "g",
                               [_vi("x", [2])], [_vi("y", [2])])
    model = helper.make_model(custom, opset_imports=[helper.make_opsetid("", 8), helper.make_opsetid("com.example", 1)])
    onnx.save(model, str(tmp_path / "custom.onnx"))
    problems = check_onnx_for_tensorrt(tmp_path / "custom.onnx")
    assert any(p.startswith("opset 8 is outside TensorRT") for p in problems), problems
    assert any(p.startswith("op com.example::Foo (node 'foo') is outside the default ONNX domain") for p in problems)


def test_supported_op_table_is_consistent():
    assert not supported_ops.SUPPORTED & supported_ops.UNSUPPORTED
    assert {"Conv", "Gemm", "MatMul", "LayerNormalization", "Softmax", "Gelu", "Resize"} <= supported_ops.SUPPORTED
    assert {"Unique", "SequenceAt", "ConvInteger"} <= supported_ops.UNSUPPORTED
    assert supported_ops.OPSET_MIN <= 20 <= supported_ops.OPSET_MAX


def test_options_are_validated():
    assert TensorRTTarget().options == {"precision": "fp32", "workspace_mb": 4096}
    with pytest.raises(BadInput, match="tensorrt option precision='int8' is not one of fp32, fp16"):
        TensorRTTarget(precision="int8")
    with pytest.raises(BadInput, match="unknown tensorrt option 'fp16'"):
        TensorRTTarget(fp16=True)
    with pytest.raises(BadInput, match="workspace_mb must be int"):
        TensorRTTarget(workspace_mb="big")


class ConvThenRefused(torch.nn.Module):
    """Conv and linear (TensorRT's parser takes them), an int bitwise and (ONNX BitwiseAnd: the parser's table says N)
    and a 1D max pool (ONNX MaxPool on a 3D tensor: TensorRT pools 2D or 3D inputs only)."""

    def __init__(self, refused: bool = True) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 2)
        self.pool = torch.nn.MaxPool1d(2)
        self.refused = refused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x)).mean((2, 3))
        out = self.fc(y)
        if self.refused:
            out = out + torch.bitwise_and((y * 10).to(torch.int32), 3).float().sum() + self.pool(y.unsqueeze(1)).sum()
        return out


_SMALL = (1, 3, 8, 8)
_ONNX_OP = re.compile(r"ONNX op (\w+)")


def _checked(registry, refused: bool):
    result = edgest.preflight.check(ConvThenRefused(refused).eval(), ["tensorrt"], input_shape=_SMALL, registry=registry)
    return result.coverage["tensorrt"]


def test_check_predicts_conv_and_linear_native_without_tensorrt(registry):
    cov = _checked(registry, refused=False)
    assert cov.status == "known", cov.note
    assert cov.verdicts("aten.conv2d.default") == {"native": 1} and cov.verdicts("aten.linear.default") == {"native": 1}
    assert set(cov.summary()) == {"native"}
    assert "prediction from TensorRT 10.15's documented ONNX-parser operator table" in cov.note
    assert "not from TensorRT itself" in cov.note
    if not HAS_TRT:
        assert cov.note.endswith("runtime unavailable here: tensorrt not installed (pip install tensorrt (needs an NVIDIA GPU and driver))")


def test_check_names_the_onnx_op_the_parser_refuses_on_the_captured_op(registry):
    cov = _checked(registry, refused=True)
    assert cov.status == "known", cov.note
    bad = {o.op: o.note for o in cov.ops if o.verdict == "unsupported"}
    assert bad == {
        "aten.bitwise_and.Scalar": "ONNX op BitwiseAnd is not supported by TensorRT 10.15's ONNX parser",
        "aten.max_pool1d.default": "ONNX op MaxPool: TensorRT pools 2D or 3D inputs only, this one is 1D",
    }, cov.ops
    assert cov.verdicts("aten.conv2d.default") == {"native": 1} and cov.verdicts("aten.linear.default") == {"native": 1}
    assert next(o for o in cov.ops if o.op == "aten.max_pool1d.default").where[0].endswith("(pool)")


def test_coverage_flags_the_ops_the_compiles_own_onnx_check_flags(tmp_path, monkeypatch):
    import edgest.coverage

    model = ConvThenRefused().eval()
    example = (torch.randn(*_SMALL),)
    program = capture(model, example)
    _, problems = prepare_onnx(program, example, tmp_path)  # what lower() records as onnx_problems
    flagged = {re.match(r"(?:op )?(\w+)", p).group(1) for p in problems}
    cov = TensorRTTarget().coverage(program)
    assert flagged == {"BitwiseAnd", "MaxPool"}
    assert {m for o in cov.ops for m in _ONNX_OP.findall(o.note)} == flagged
    monkeypatch.setattr(edgest.coverage, "SAMPLE_OPS", False)  # the whole graph exported: the same verdicts
    assert TensorRTTarget().coverage(capture(model, example)).ops == cov.ops


def test_an_op_the_onnx_export_lacks_is_unsupported_as_the_export_fails(tmp_path):
    class Cummax(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cummax(torch.relu(x), 2)[0]

    example = (torch.randn(*_SMALL),)
    cov = TensorRTTarget().coverage(capture(Cummax(), example))
    assert cov.verdicts("aten.cummax") == {"unsupported": 1} and cov.verdicts("aten.relu") == {"native": 1}
    assert "ONNX export: no ONNX function for aten.cummax.default" in next(o.note for o in cov.ops if "cummax" in o.op)
    with pytest.raises(Unsupported, match=r"target 'tensorrt' \(ONNX export\) cannot lower op aten.cummax"):
        prepare_onnx(capture(Cummax(), example), example, tmp_path)


@no_trt
def test_cli_check_answers_for_tensorrt_without_it(tmp_path):
    proc = _edgest(tmp_path, "check", "--model", "lmuformer_tiny", "--targets", "tensorrt", "--json")
    assert proc.returncode == 0, proc.stderr
    cov = json.loads(proc.stdout)["targets"]["tensorrt"]
    assert cov["status"] == "known" and cov["summary"] and "tensorrt not installed" in cov["note"]


@trt_runtime
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_builds_runs_and_records_the_onnx_check(registry, tmp_path, precision):
    report = edgest.compile("squeezetime_tiny", "tensorrt", out_dir=tmp_path / "run", precision=precision,
                            target_options={"precision": precision}, registry=registry, latency=FAST)
    assert report.status == "passed", report.error
    details = report.artifact.details
    assert details["onnx_problems"] == [] and details["precision"] == precision and details["tensorrt"]
    assert (tmp_path / "run" / "model.plan").is_file() and (tmp_path / "run" / "model.onnx").is_file()
