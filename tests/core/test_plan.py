"""plan() resolves a compile once; compile(plan) runs stages that keep no state; the report says where it wrote."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import edgest
from edgest.errors import BadInput, Unsupported
from edgest.pipeline import compile as compile_model
from edgest.plan import Plan, plan
from edgest.fsio import sha256_of

TINY_NET = '''
import torch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(x)
'''


def test_plan_resolves_target_precision_passes_and_folder_once(tmp_path):
    p = plan("squeezetime_tiny", "onnx", precision="int8", out_dir=tmp_path / "run", samples=3, seed=5)
    assert isinstance(p, Plan) and p.target.name == "onnx" and p.precision == "int8"
    assert [x.name for x in p.passes] == ["quantize"]  # int8 adds the quantize stage's pass
    assert p.out_dir == tmp_path / "run" and p.checks.samples == 3 and p.checks.seed == 5
    assert p.spec.name == "squeezetime_tiny" and p.checks.task_samples == 0  # no weights: no task set
    with pytest.raises(Unsupported, match="does not support precision 'int8'; supported: fp32"):
        plan("squeezetime_tiny", "tvm", precision="int8", out_dir=tmp_path / "x")
    with pytest.raises(BadInput, match="add --precision int8"):
        plan("squeezetime_tiny", "onnx", passes=["quantize"], out_dir=tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # planning writes nothing


def test_run_folder_of_a_model_file_is_the_one_reported_and_printed(tmp_path):
    (tmp_path / "tinynet.py").write_text(TINY_NET)
    proc = subprocess.run([sys.executable, "-m", "edgest", "compile", "--model", "tinynet.py:Net", "--target", "eager",
                           "--input-shape", "1x8", "--samples", "2"], cwd=tmp_path, capture_output=True, text=True,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "edgest-out" / "tinynet-eager"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["run_dir"] == str(Path("edgest-out") / "tinynet-eager")
    assert f"artifact: {Path('edgest-out') / 'tinynet-eager' / 'model.pt2'}" in proc.stdout
    assert "tinynet.py:Net" not in proc.stdout  # the old CLI printed a folder derived from the --model text


def test_compile_of_a_plan_times_every_stage_and_leaves_passes_stateless(tmp_path):
    p = plan("squeezetime_tiny", "onnx", precision="int8", out_dir=tmp_path / "run", samples=2,
             passes=[("quantize", {"scheme": "int8", "calibration_size": 2})], latency=None)
    report = compile_model(p)
    assert report.run_dir == str(tmp_path / "run") and (tmp_path / "run" / "report.json").is_file()
    assert set(report.stage_seconds) == {"build", "capture", "passes", "lower", "quantize", "checks"}
    assert all(s >= 0 for s in report.stage_seconds.values())
    quantize = p.passes[0]
    assert vars(quantize).keys() == {"options"}  # no pending step or details kept on the pass
    record = report.passes[0]
    assert record.modified and record.accuracy_delta is not None  # the artifact stage filled the record
    assert report.artifact.details["quantization"]["stage"] == "artifact"


def test_sha256_of_a_package_folder_covers_names_and_contents(tmp_path):
    pkg = tmp_path / "m.mlpackage"
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Data" / "w.bin").write_bytes(b"abc")
    (pkg / "Manifest.json").write_text("{}")
    first = sha256_of(pkg)
    assert len(first) == 64 and sha256_of(pkg) == first
    (pkg / "Data" / "w.bin").write_bytes(b"abd")
    assert sha256_of(pkg) != first
    (pkg / "Data" / "w.bin").write_bytes(b"abc")
    (pkg / "Data" / "w.bin").rename(pkg / "Data" / "v.bin")
    assert sha256_of(pkg) != first  # a renamed file is a different package


def test_no_function_in_the_core_is_over_60_lines():
    root = Path(edgest.__file__).parent
    long = []
    for f in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{f.relative_to(root)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, "functions over 60 lines: " + ", ".join(long)


def test_a_user_module_plan_builds_that_module(tmp_path):
    net = torch.nn.Linear(3, 2)
    p = plan(net, "eager", input_shape=(1, 3), out_dir=tmp_path / "r")
    assert p.build_module() is net and p.spec.family == "user" and p.spec.input.shape == (1, 3)
