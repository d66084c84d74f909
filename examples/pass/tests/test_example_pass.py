"""The example pass passes edgest's pass conformance kit, and folds what it says it folds."""

from __future__ import annotations

import pytest
import torch

import edgest
from edgest.targets.eager import EagerTarget
from edgest.testing import PassConformance, tiny_convnet
from edgest_example_pass.fuse_bn import FuseBatchNormPass


class TestFuseBatchNorm(PassConformance):
    pass_name = "fuse-bn"
    pass_options = {"tolerance": 1e-3}
    plugin = "edgest_example_pass.plugin"


def _count(program: torch.export.ExportedProgram, op: str) -> int:
    return sum(1 for n in program.graph.nodes if n.op == "call_function" and str(n.target) == op)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_folds_batch_norm_exactly(dims: int) -> None:
    conv, bn = {1: (torch.nn.Conv1d, torch.nn.BatchNorm1d), 2: (torch.nn.Conv2d, torch.nn.BatchNorm2d),
                3: (torch.nn.Conv3d, torch.nn.BatchNorm3d)}[dims]
    torch.manual_seed(0)
    model = torch.nn.Sequential(conv(3, 4, 3, bias=False), bn(4), torch.nn.ReLU()).eval()
    model[1].running_mean.uniform_(-1, 1)
    model[1].running_var.uniform_(0.5, 2)
    example = (torch.randn(1, 3, *([6] * dims)),)
    program = torch.export.export(model, example, strict=False)
    result = FuseBatchNormPass().run(program, edgest.PassContext(EagerTarget(), example))
    assert result.modified and result.details["folded"] == 1 and result.details["max_rel_error"] < 1e-5
    assert _count(program, "aten.batch_norm.default") == 1 and _count(result.program, "aten.batch_norm.default") == 0
    torch.testing.assert_close(result.program.module()(*example), model(*example), rtol=1e-5, atol=1e-5)


def test_nothing_to_fold_is_reported_unchanged() -> None:
    example = (torch.randn(2, 8),)
    program = torch.export.export(torch.nn.Linear(8, 2).eval(), example, strict=False)
    result = FuseBatchNormPass().run(program, edgest.PassContext(EagerTarget(), example))
    assert not result.modified and result.program is program


def test_compile_records_the_pass_with_its_typed_options(tmp_path) -> None:
    from edgest.plugins import new_plugin_manager
    from edgest_example_pass import plugin

    pm = new_plugin_manager(entry_points=False)
    assert pm.add(plugin, "example-pass") is None
    report = edgest.compile(tiny_convnet(), "eager", passes=[("fuse-bn", {"tolerance": 1e-3})], input_shape=(1, 3, 16, 16),
                            out_dir=tmp_path / "run", registry=pm.registry, latency=None, samples=2)
    (record,) = report.passes
    assert record.name == "fuse-bn" and record.modified and record.options == {"tolerance": 1e-3}
    assert record.accuracy_delta["sqnr_db"] > 80 and report.status == "passed"
    with pytest.raises(edgest.BadInput, match="unknown pass 'fuse-bn' option 'foo'; available: verify, tolerance"):
        FuseBatchNormPass(foo=1)
