"""Planted faults for ``edgest debug`` tests: a small CNN, a pass that breaks one layer, a layer that quantises badly.

* :class:`ScaleWeightPass` (``scale-weight``) scales one module's weight in the captured program,
  so every target lowers a program whose only fault is that module's output;
* :func:`quantises_badly` gives one convolution a weight outlier on an input channel that is
  always zero: eager PyTorch does not notice, but int8 weights (per channel or per tensor) round
  the layer's other weights to zero;
* :class:`ProgramTarget` (``debug-pt2``) saves the program and exposes intermediate outputs by
  running it node by node: the core's tests need no toolchain.

Register them on a fresh plugin manager with ``pm.add(edgest.testing.faults, "faults")``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from edgest.hookspecs import hookimpl
from edgest.model import ModelEntry
from edgest.passes.base import Pass, PassContext, PassResult
from edgest.records import InputSpec, ModelSpec
from edgest.target import Lowered, Target
from edgest.targets.eager import EagerRunner


class Block(torch.nn.Module):
    """conv → ReLU, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.act = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x)) + x


class DebugNet(torch.nn.Module):
    """stem → two residual blocks → pool → fc: a few named modules, fast on every target."""

    def __init__(self, channels: int = 8, classes: int = 4) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = torch.nn.Sequential(Block(channels), Block(channels))
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))


def debug_net() -> DebugNet:
    """:class:`DebugNet` in eval mode, the same every call (seeded, without touching the global generator)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return DebugNet().eval()


def quantises_badly(net: DebugNet | None = None) -> DebugNet:
    """``net`` with ``blocks.1.conv`` made to quantise badly, its eager output unchanged.

    Channel 0 of the stem and of ``blocks.0.conv`` is zeroed, so channel 0 of what ``blocks.1.conv``
    reads is always 0; that conv's weights on channel 0 become 100. Eager is unaffected (they
    multiply zeros), but an int8 weight scale of 100/127 rounds all its other weights to 0.
    """
    net = net or debug_net()
    with torch.no_grad():
        for conv in (net.stem, net.blocks[0].conv):
            conv.weight[0] = 0.0
            conv.bias[0] = 0.0
        net.blocks[1].conv.weight[:, 0] = 100.0
    return net


DEBUG_NET = ModelEntry(ModelSpec(name="debug_net", family="test", input=InputSpec((1, 3, 16, 16), layout="B,C,H,W"),
                                 num_classes=4), "edgest.testing.faults:debug_net")
BAD_INT8_NET = ModelEntry(ModelSpec(name="debug_net_bad_int8", family="test", input=InputSpec((1, 3, 16, 16), layout="B,C,H,W"),
                                    num_classes=4), "edgest.testing.faults:quantises_badly")


class ScaleWeightPass(Pass):
    """Scales the weight of module ``module`` by ``factor`` in the captured program: a fault in exactly one layer."""

    name = "scale-weight"
    description = "planted fault for edgest debug tests: scale one module's weight"
    option_table: ClassVar[dict[str, tuple[Any, Any]]] = {"module": (str, "blocks.1.conv"), "factor": (float, 1.5)}

    def run(self, program: torch.export.ExportedProgram, ctx: PassContext) -> PassResult:
        import copy
        import warnings

        with warnings.catch_warnings():  # torch 2.13 warns about its own LeafSpec when copying a program
            warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
            new = copy.deepcopy(program)
        key = f"{self.option('module')}.weight"
        if key not in new.state_dict:
            raise KeyError(f"no parameter '{key}' in the program")
        with torch.no_grad():
            new.state_dict[key].mul_(self.option("factor"))
        return PassResult(new, True, f"scaled {key} by {self.option('factor')}")


def node_values(program: torch.export.ExportedProgram, inputs: Sequence[np.ndarray], names: set[str]) -> dict[str, np.ndarray]:
    """The values of the nodes ``names`` when ``program`` runs ``inputs`` (its graph interpreted node by node)."""
    seen: dict[str, np.ndarray] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            out = super().run_node(n)
            if n.name in names and isinstance(out, torch.Tensor):
                seen[n.name] = out.detach().float().numpy().copy()
            return out

    with torch.no_grad():
        Recorder(program.module()).run(*(torch.from_numpy(np.asarray(x)) for x in inputs))
    return seen


class ProgramTarget(Target):
    """The program saved as ``.pt2`` and run by PyTorch, with intermediate outputs by interpretation."""

    name = "debug-pt2"
    artifact_format = "pt2"
    description = "test target for edgest debug: a saved program, run node by node for intermediates"
    requires = ("torch",)

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        path = out_dir / "model.pt2"
        torch.export.save(program, str(path))
        return Lowered(path)

    def load(self, path: Path, threads: int) -> EagerRunner:
        return EagerRunner(path, threads)

    def intermediates(self, path: Path, program: torch.export.ExportedProgram, inputs: Sequence[Sequence[np.ndarray]],
                      probes: Sequence[Any]) -> dict[str, list[np.ndarray]]:
        saved = torch.export.load(str(path))
        runs = [node_values(saved, xs, {p.node for p in probes}) for xs in inputs]
        return {p.module: [r[p.node] for r in runs] for p in probes if all(p.node in r for r in runs)}


@hookimpl
def register_models(register: Callable[[ModelEntry], None]) -> None:
    register(DEBUG_NET)
    register(BAD_INT8_NET)


@hookimpl
def register_passes(register: Callable[[type[Pass]], None]) -> None:
    register(ScaleWeightPass)


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    register(ProgramTarget)


def registry_with(plugin: Any, name: str) -> Any:
    """A registry of the built-ins, ``plugin`` (a target's plugin module) and the planted faults only."""
    from edgest.plugins import new_plugin_manager

    pm = new_plugin_manager(entry_points=False)
    pm.add(plugin, name)
    pm.add(sys.modules[__name__], "faults")
    return pm.registry


def debug_scaled_conv(target: str, registry: Any, out: Path) -> Any:
    """Kit check for a target's :meth:`~edgest.target.Target.intermediates`: one conv's weight scaled in the captured
    program; ``edgest debug`` must name ``blocks.1.conv`` and find eager agreement before it. The DebugResult."""
    import edgest
    from edgest.debug import debug_run

    edgest.compile("debug_net", target, passes=[("scale-weight", {"module": "blocks.1.conv", "factor": 1.5})],
                   out_dir=out, samples=2, latency=None, registry=registry)
    result = debug_run(out, registry=registry)
    assert result.culprit == "blocks.1.conv", result.verdict
    assert result.module("blocks.0").sqnr_db > 100  # the float artifact agrees with eager before the fault
    return result


def debug_bad_int8_layer(target: str, registry: Any, out: Path) -> Any:
    """Kit check: at int8, the layer made to quantise badly (:func:`quantises_badly`) fails the compile and
    ``edgest debug`` names it. The DebugResult."""
    import edgest
    from edgest.debug import debug_run

    report = edgest.compile("debug_net_bad_int8", target, precision="int8", out_dir=out, samples=2, latency=None,
                            registry=registry, passes=[("quantize", {"calibration_size": 4})])
    assert report.status == "failed"
    result = debug_run(out, registry=registry)
    assert result.culprit == "blocks.1.conv", result.verdict
    assert result.module("blocks.0").sqnr_db > 25 and result.module("blocks.1.conv").sqnr_db < 5
    return result


def conv_bn_net() -> torch.nn.Sequential:
    """Conv → BatchNorm (far from identity) → ReLU → pool → linear, (1, 3, 16, 16) → (1, 5): a pair int8 quantizers
    built on torchao fold (:mod:`edgest.quantize.folded`)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5)).eval()
    net[1].running_mean.uniform_(-2, 2)  # conv and conv∘BN differ: comparing one with the other reads ~-13 dB
    net[1].running_var.uniform_(0.1, 0.5)
    return net


def debug_folded_batch_norm(target: str, out: Path) -> Any:
    """Kit check: at int8, a conv whose BatchNorm the quantizer folded is compared as that BN (the value it now
    computes), and a passing run has no culprit. The DebugResult."""
    import edgest
    from edgest.debug import debug_run

    net = conv_bn_net()
    report = edgest.compile(net, target, precision="int8", input_shape=(1, 3, 16, 16), out_dir=out, latency=None,
                            samples=2, passes=[("quantize", {"calibration_size": 4})])
    assert report.status == "passed", report.error
    result = debug_run(report.run_dir, model=net)
    compared = {m.module: m.sqnr_db for m in result.modules}
    assert result.culprit is None, (result.verdict, compared)
    assert "1" in compared and "0" not in compared and compared["1"] > 25, compared
    return result


class _LayerScale(torch.nn.Module):
    """``x * gamma`` per channel (EMOv2's LayerScale2d), a constant Mul an optimiser folds into the conv before it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = torch.nn.Parameter(torch.linspace(0.5, 2.0, channels).reshape(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _ConvScale(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.ls = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), _LayerScale(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ls(self.conv(x))


class _PreNorm(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm, self.conv, self.act = torch.nn.BatchNorm2d(8), torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.norm(x)))


class _DepthwiseBN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 8, 5, padding=2, groups=8, bias=False)
        self.norm, self.act = torch.nn.BatchNorm2d(8), torch.nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


def fold_across_modules_net() -> torch.nn.Sequential:
    """conv → layer scale (module ``0``), a block that starts with a BatchNorm (``1``, pre-norm), a depthwise conv →
    BatchNorm → SiLU (``2``), pool, linear; (1, 3, 16, 16) → (1, 5). The scale and the next module's BatchNorm both
    fold into the first conv; OpenVINO folds only the depthwise conv's BatchNorm scale into it (EMOv2's pattern)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(_ConvScale(), _PreNorm(), _DepthwiseBN(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 5)).eval()
    for norm in (net[1].norm, net[2].norm):  # far from identity: a conv's output and its BN's differ (~-13 dB)
        norm.running_mean.uniform_(-2, 2)
        norm.running_var.uniform_(0.1, 0.5)
        norm.weight.data.uniform_(0.5, 2)
        norm.bias.data.uniform_(-1, 1)
    return net


def debug_fold_across_modules(target: str, out: Path, precision: str = "fp32") -> Any:
    """Kit check: a passing run of :func:`fold_across_modules_net` has no culprit, though the artifact folded the next
    module's BatchNorm into the conv before it: that tensor is compared as the BatchNorm (or not at all), never as
    the conv. The DebugResult."""
    import edgest
    from edgest.debug import debug_run

    net = fold_across_modules_net()
    report = edgest.compile(net, target, precision=precision, input_shape=(1, 3, 16, 16), out_dir=out, latency=None,
                            samples=2)
    assert report.status == "passed", report.error
    result = debug_run(report.run_dir, model=net)
    compared = {m.module: m.sqnr_db for m in result.modules}
    assert result.culprit is None, (result.verdict, compared)  # so every module compared is within the limit
    floor = 100 if precision == "fp32" else 0
    assert compared.get("1.conv", 0) > floor and compared.get("2", 0) > floor, compared  # the blocks after are compared
    return result
