"""Core ML target (targets/coreml): conversion of the zoo at fp16 (default) and fp32, and its checks.

Core ML prediction needs macOS. Off macOS the package's own program and weights run in the
NumPy MIL reference interpreter (edgest_coreml.mil_reference): the accuracy check runs and is
labelled as such, the latency check is not run (status "incomplete", `edgest compile` exits 1).
These tests hold the interpreter to eager PyTorch for every small zoo variant, prove it honest
(a corrupted weight fails the check; an op it lacks is "not checked", never passed), and on
macOS run the suite's own lower → run → accuracy test on Core ML itself.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import ClassVar

import pytest

import edgest
from edgest.checks import accuracy
from edgest.checks.isolated import run_in_child
from edgest.errors import BadInput, Unsupported
from edgest.plugins import new_plugin_manager
from edgest.testing import TargetConformance, tiny_convnet

cm_plugin = pytest.importorskip("edgest_coreml.plugin", reason="edgest-coreml not installed (pip install -e targets/coreml)")
zoo_plugin = pytest.importorskip("edgest_models.plugin", reason="edgest-models not installed (pip install -e models)")

from edgest_coreml.convert import tree_sha256, verify_package  # noqa: E402
from edgest_coreml.mil_reference import LABEL, MILReferenceRunner, OpNotImplemented  # noqa: E402
from edgest_coreml.target import CoreMLTarget, timing_unavailable_here  # noqa: E402

FAST = edgest.LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
ON_MAC = sys.platform == "darwin"
LINUX_TIMING = (
    "not run: needs macOS (Core ML prediction; this host is Linux); accuracy was checked with the MIL reference "
    "interpreter, whose speed says nothing about Core ML's"
)
toolchain = pytest.mark.skipif(importlib.util.find_spec("coremltools") is None,
                               reason="coremltools not installed (pip install -e targets/coreml)")
off_mac = pytest.mark.skipif(ON_MAC, reason="checks the behaviour off macOS")
on_mac = pytest.mark.skipif(not ON_MAC, reason="Core ML prediction needs macOS")


def _assert_reference_checked_off_mac(report: edgest.Report, run_dir: Path) -> None:
    """The outcome off macOS: artifact written and described, accuracy passed on the MIL reference, latency not run."""
    if sys.platform.startswith("linux"):
        assert timing_unavailable_here() == LINUX_TIMING
    assert report.status == "incomplete"
    pkg = run_dir / report.artifact.path
    assert report.artifact.path == "model.mlpackage" and (pkg / "Manifest.json").is_file()
    assert report.artifact.format == "mlpackage" and report.artifact.size_bytes > 0
    assert report.artifact.sha256 == report.artifact.details["sha256_tree"]  # a folder: the digest of its tree
    assert report.artifact.details["sha256_tree"] == tree_sha256(pkg)
    acc, lat = report.check("accuracy"), report.check("latency")
    assert acc.status == "passed" and acc.host["runtime"] == LABEL == "MIL reference (not the Core ML runtime)"
    assert acc.limits == accuracy.LIMITS[report.precision]
    assert lat.status == "not_run" and lat.reason == timing_unavailable_here() and not lat.metrics
    assert f"runtime: {LABEL}" in (run_dir / "report.md").read_text()
    saved = json.loads((run_dir / "report.json").read_text())
    assert saved["status"] == "incomplete" and saved["artifact"]["details"]["sha256_tree"] == tree_sha256(pkg)


class TestCoreMLConformance(TargetConformance):
    target_name = "coreml"
    target_options: ClassVar[dict[str, str]] = {"precision": "fp32"}  # the suite holds fp32 to fp32 limits; fp16 (the default) is tested below

    def test_lower_run_and_accuracy(self, runnable, registry, tmp_path) -> None:
        if ON_MAC:
            super().test_lower_run_and_accuracy(runnable, registry, tmp_path)
            return
        report = edgest.compile(tiny_convnet(), self.target_name, input_shape=self.input_shape,
                                out_dir=tmp_path / "run", target_options=dict(self.target_options),
                                registry=registry, latency=FAST, samples=8)
        _assert_reference_checked_off_mac(report, tmp_path / "run")
        assert report.precision == "fp32" and report.check("accuracy").metrics["sqnr_db"] >= 40.0


@pytest.fixture(scope="module")
def registry():
    """Only the zoo and this target: other plugins cannot break these tests."""
    pm = new_plugin_manager(entry_points=False)
    pm.add(zoo_plugin, "models")
    pm.add(cm_plugin, "coreml")
    return pm.registry


def _model(registry, name: str):
    """A zoo model in eval mode with seeded weights, and two seeded input clips.

    EMOv2's official layer-scale init (1e-6) gives logits near 1e-6, below fp16's normal range
    (6e-5): any fp16 runtime, Core ML's included, loses them. Trained weights have far larger
    scales, so the layer scales are set to 1 here, as in a trained model.
    """
    import torch

    entry = registry.model(name)
    torch.manual_seed(0)
    model = entry.build().eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if name.startswith("emov2") and pname.endswith("gamma"):
                p.fill_(1.0)
    clips = [torch.randn(*entry.spec.input.shape) for _ in range(2)]
    return model, clips, entry.spec


def _program(registry, name: str):
    """A zoo model captured by edgest, already in the ATen dialect (decomposed once for both precisions)."""
    from edgest.capture import capture

    model, clips, spec = _model(registry, name)
    return capture(model, (clips[0],)).run_decompositions({}), model, clips, spec


ZOO_TINY = ["squeezetime_tiny", "lmuformer_tiny",  # suite time (issue 18): two families by default, the rest with -m slow
            *(pytest.param(m, marks=pytest.mark.slow) for m in ("emov2_tiny_video", "vivit_fa_tiny", "vivit_fe_tiny",
                                                                "lmuformer_video_tiny"))]


@toolchain
@pytest.mark.parametrize("name", ZOO_TINY)
def test_zoo_model_converts_and_the_mil_reference_matches_eager(registry, name, tmp_path) -> None:
    """Each small zoo variant at fp16 (default) and fp32: package details, then the interpreter against eager."""
    import torch

    program, model, clips, spec = _program(registry, name)
    with torch.no_grad():
        eager = [model(x).numpy() for x in clips]
    weights, sqnr = {}, {}
    for precision, compute in (("fp16", "FLOAT16"), ("fp32", "FLOAT32")):
        target = CoreMLTarget() if precision == "fp16" else CoreMLTarget(precision="fp32")
        lowered = target.lower(program, (clips[0],), tmp_path / precision)
        d = lowered.details
        assert lowered.path == tmp_path / precision / "model.mlpackage" and lowered.path.is_dir()
        assert d["compute_precision"] == compute and d["precision"] == precision and d["compute_units"] == "ALL"
        assert d["minimum_deployment_target"] == "iOS17" and d["specification_version"] == 8
        assert d["coremltools"] == importlib.metadata.version("coremltools") and d["source_dialect"] == "ATEN"
        ops = d["mil_ops"]
        assert ops["non_const"] > 0 and ops["total"] >= ops["non_const"] and 0 < len(ops["top"]) <= 10
        assert sum(ops["top"].values()) <= ops["total"] and ops["types"] >= len(ops["top"])
        # fp32 in and out at both precisions, the model's own shapes
        in_name = program.graph_signature.user_inputs[0]
        assert d["interface"]["inputs"] == [{"name": in_name, "shape": list(spec.input.shape), "dtype": "float32"}]
        assert d["interface"]["outputs"] == [{"name": "output", "shape": [1, spec.num_classes], "dtype": "float32"}]
        assert re.fullmatch(r"[0-9a-f]{64}", d["sha256_tree"]) and d["sha256_tree"] == tree_sha256(lowered.path)
        assert "Data/com.apple.CoreML/model.mlmodel" in d["files"] and "Manifest.json" in d["files"]
        assert d["seconds"]["convert"] > 0 and isinstance(d["warnings"], list)
        assert d["runs_here"] is ON_MAC and ("numerics" in d) is not ON_MAC
        json.dumps(d)
        weights[precision] = (lowered.path / "Data/com.apple.CoreML/weights/weight.bin").stat().st_size

        runner = MILReferenceRunner(lowered.path)
        outs = [runner.run([x.numpy()])[0] for x in clips]
        assert all(o.dtype == "float32" and o.shape == e.shape for o, e in zip(outs, eager))
        m = accuracy.compare(eager, outs)
        assert not accuracy.within(m, accuracy.LIMITS[precision]), (precision, m)
        sqnr[precision] = m["sqnr_db"]
    # FLOAT16 really took effect: the weights are stored at half the size, and the interpreter rounds like fp16
    assert weights["fp16"] < 0.6 * weights["fp32"], weights
    assert sqnr["fp32"] >= 100.0 and sqnr["fp16"] < 90.0, sqnr


@pytest.fixture(scope="module")
def tiny_package(tmp_path_factory):
    """tiny_convnet lowered with non-default options (straight from capture: the TRAINING dialect)."""
    import torch

    from edgest.capture import capture

    if importlib.util.find_spec("coremltools") is None:
        pytest.skip("coremltools not installed (pip install -e targets/coreml)")
    x = torch.randn(1, 3, 16, 16)
    target = CoreMLTarget(minimum_deployment_target="iOS16", compute_units="CPU_ONLY")
    return target.lower(capture(tiny_convnet(), (x,)), (x,), tmp_path_factory.mktemp("cm"))


def test_options_reach_the_package_and_bad_ones_are_refused(tiny_package) -> None:
    d = tiny_package.details
    assert d["minimum_deployment_target"] == "iOS16" and d["specification_version"] == 7
    assert d["compute_units"] == "CPU_ONLY" and d["compute_precision"] == "FLOAT16" and d["source_dialect"] == "TRAINING"
    assert d["interface"]["inputs"] == [{"name": "input", "shape": [1, 3, 16, 16], "dtype": "float32"}]
    with pytest.raises(BadInput, match="unknown coreml option 'quantize'"):
        CoreMLTarget(quantize=True)
    with pytest.raises(BadInput, match="compute_units='NPU' is not one of ALL, CPU_ONLY"):
        CoreMLTarget(compute_units="NPU")
    with pytest.raises(BadInput, match="precision='int8' is not one of fp16, fp32"):
        CoreMLTarget(precision="int8")
    # the package read back must match the model it came from
    with pytest.raises(Unsupported, match=r"wrong interface: input input is float32 \[1, 3, 16, 16\], the model takes float32 \[1, 3, 32, 32\]"):
        verify_package(tiny_package.path, [("input", (1, 3, 32, 32), "float32")], [("output", (1, 5), "float32")], 7)


def test_macos_runner_feeds_names_and_dtypes_from_the_spec(tiny_package, monkeypatch) -> None:
    """The macOS code path, with Core ML's MLModel faked (it cannot run here): names, dtypes, order, units."""
    import coremltools as ct
    import numpy as np

    calls = {}

    class FakeMLModel:
        __proxy__ = object()  # what a loaded model has

        def __init__(self, path, compute_units):
            calls["init"] = (path, compute_units)
            self._spec = ct.utils.load_spec(path)

        def get_spec(self):
            return self._spec

        def predict(self, feed):
            calls["feed"] = {k: (v.dtype, v.shape, v.flags["C_CONTIGUOUS"]) for k, v in feed.items()}
            return {"output": np.full((1, 5), 0.5, np.float16)}

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(ct.models, "MLModel", FakeMLModel)
    runner = CoreMLTarget(compute_units="CPU_ONLY").load(tiny_package.path, threads=4)
    x = np.asfortranarray(np.ones((1, 3, 16, 16), np.float64))
    (y,) = runner.run([x])
    assert calls["init"] == (str(tiny_package.path), ct.ComputeUnit.CPU_ONLY)
    assert calls["feed"] == {"input": (np.dtype(np.float32), (1, 3, 16, 16), True)}
    assert y.dtype == np.float32 and y.shape == (1, 5) and runner.threads == 0
    with pytest.raises(BadInput, match="takes 1 input"):
        runner.run([x, x])


@toolchain
def test_an_op_coremltools_cannot_convert_is_named_with_its_line(tmp_path) -> None:
    import torch
    from torch import nn

    from edgest.capture import capture

    class CumMax(nn.Module):
        def forward(self, x):
            return torch.cummax(x, dim=1)[0].mean(-1)

    class GridSample3d(nn.Module):  # the converter exists but Core ML's resample is 2-D only
        def forward(self, x):
            return torch.nn.functional.grid_sample(x, torch.zeros(1, 2, 2, 2, 3), align_corners=False)

    x = torch.randn(1, 4, 8)
    with pytest.raises(Unsupported, match=r"cannot lower op aten\.cummax\.default \(from test_coreml\.py:\d+\): coremltools has no converter"):
        CoreMLTarget().lower(capture(CumMax(), (x,)), (x,), tmp_path / "a")
    x = torch.randn(1, 2, 4, 6, 6)
    with pytest.raises(Unsupported, match=r"cannot lower op aten\.grid_sampler\.default \(from test_coreml\.py:\d+\): its converter failed: ValueError: .*rank 4"):
        CoreMLTarget().lower(capture(GridSample3d(), (x,)), (x,), tmp_path / "b")
    assert not (tmp_path / "a" / "model.mlpackage").exists()


@off_mac
def test_debug_s_first_coremltools_import_prints_nothing(tiny_package) -> None:
    """`edgest debug` on a Core ML run imports coremltools in the CLI's own process: its "Torch version ... has not
    been tested with coremltools" and torch's _pytree deprecation (through torchao) reached the terminal."""
    from edgest.testing.chatter import stdout_without_chatter

    code = ("import sys, numpy as np\n"
            "from edgest_coreml.intermediates import intermediates\n"
            "assert 'coremltools' not in sys.modules\n"
            f"out = intermediates({str(tiny_package.path)!r}, [[np.zeros((1, 3, 16, 16), np.float32)]], [])\n"
            "print(out, 'coremltools' in sys.modules)\n")
    assert stdout_without_chatter(code, marks=("Torch version", "_pytree", "Failed to load")).strip() == "{} True"


def test_load_off_macos_gives_the_mil_reference_runner(tiny_package, tmp_path) -> None:
    import numpy as np

    runner = CoreMLTarget().load(tiny_package.path, threads=1)
    assert isinstance(runner, MILReferenceRunner) and runner.label == LABEL and runner.threads == 0
    assert runner.timing_unavailable == timing_unavailable_here() and "needs macOS" in runner.timing_unavailable
    (y,) = runner.run([np.zeros((1, 3, 16, 16), np.float32)])
    assert y.dtype == np.float32 and y.shape == (1, 5)
    with pytest.raises(BadInput, match="takes 1 input"):
        runner.run([])
    with pytest.raises(Unsupported, match="no Core ML package at"):
        CoreMLTarget().load(tmp_path / "model.mlpackage", threads=1)


@toolchain
def test_cli_compile_checks_accuracy_on_the_mil_reference_off_macos(tmp_path, monkeypatch, capsys) -> None:
    """`edgest compile --model squeezetime_tiny --target coreml --out X`: fp16, accuracy passed, latency not run."""
    from edgest.cli import main

    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    out = tmp_path / "cm"
    with pytest.raises(SystemExit) as exit_:
        main(["compile", "--model", "squeezetime_tiny", "--target", "coreml", "--out", str(out), "--samples", "2"])
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    details = report["artifact"]["details"]
    assert details["compute_precision"] == "FLOAT16" and report["precision"] == "fp16"
    assert details["sha256_tree"] == tree_sha256(out / "model.mlpackage")
    assert report["artifact"]["toolchain"]["coremltools"] == importlib.metadata.version("coremltools")
    if ON_MAC:
        assert exit_.value.code == 0 and report["status"] == "passed", printed
        return
    assert exit_.value.code == 1, printed
    assert report["status"] == "incomplete"
    acc, lat = report["checks"]
    assert acc["status"] == "passed" and acc["host"]["runtime"] == LABEL and acc["limits"] == accuracy.LIMITS["fp16"]
    assert 25.0 <= acc["metrics"]["sqnr_db"] < 100.0  # fp16 rounding is there, and within the fp16 limits
    assert re.search(r"accuracy\W+passed", printed), printed
    assert re.search(rf"latency\W+not_run\W+{re.escape(timing_unavailable_here())}", printed), printed
    assert lat["status"] == "not_run" and not lat["metrics"]



@toolchain
def test_an_explicit_fp32_builds_fp32_and_a_conflict_is_refused(tmp_path) -> None:
    """fp16 is only the default: `--precision fp32` builds FLOAT32; precision and target option must agree."""
    with pytest.raises(BadInput, match="precision fp32 and target option precision=fp16 disagree"):
        edgest.compile("squeezetime_tiny", "coreml", out_dir=tmp_path / "x", precision="fp32", target_options={"precision": "fp16"})
    assert not (tmp_path / "x").exists()
    report = edgest.compile("squeezetime_tiny", "coreml", out_dir=tmp_path / "cm", precision="fp32", samples=2, latency=None)
    assert report.precision == "fp32" and report.artifact.details["compute_precision"] == "FLOAT32"
    acc = report.check("accuracy")
    if not ON_MAC:
        assert acc.status == "passed" and acc.metrics["sqnr_db"] >= 100.0 and acc.limits == accuracy.LIMITS["fp32"]

def _main_ops(package: Path):
    import coremltools as ct

    main = ct.utils.load_spec(str(package)).mlProgram.functions["main"]
    return main.block_specializations[main.opset].operations


def _negate_blob(package: Path, const_name: str) -> None:
    """Negate the fp16/fp32 values of one const in the package's weight.bin (as a bad copy or a bit-rot would)."""
    import struct

    import coremltools as ct
    import numpy as np

    ops = _main_ops(package)
    (op,) = [o for o in ops if o.type == "const" and o.outputs[0].name == const_name]
    blob = op.attributes["val"].blobFileValue
    path = package / "Data/com.apple.CoreML/weights/weight.bin"
    data = bytearray(path.read_bytes())
    sentinel, _, size, offset = struct.unpack_from("<IIQQ", data, blob.offset)  # MIL blob metadata record
    assert sentinel == 0xDEADBEEF
    dtype = np.float16 if op.outputs[0].type.tensorType.dataType == ct.proto.MIL_pb2.FLOAT16 else np.float32
    values = np.frombuffer(bytes(data[offset:offset + size]), dtype)
    data[offset:offset + size] = (-values).tobytes()
    path.write_bytes(bytes(data))


@pytest.mark.slow  # suite time (issue 18): 28 s; Core AI's planted-fault test stays in the default run
@toolchain
def test_a_corrupted_weight_in_the_saved_package_fails_the_accuracy_check(registry, tmp_path) -> None:
    """The interpreter reads the package, not the converter's memory: negate one weight blob, the check fails."""
    import numpy as np

    run = tmp_path / "run"
    report = edgest.compile(tiny_convnet(), "coreml", input_shape=(1, 3, 16, 16), out_dir=run, registry=registry,
                            latency=None, samples=4)
    assert report.check("accuracy").status == "passed" and report.precision == "fp16", report.error
    package = run / "model.mlpackage"
    (linear,) = [o for o in _main_ops(package) if o.type == "linear"]
    _negate_blob(package, linear.inputs["weight"].arguments[0].name)

    inputs = accuracy.seeded_inputs([(1, 3, 16, 16)], 4, 0)  # what compile used (seed 0)
    with np.load(run / "reference.npz") as ref:
        reference = [ref[f"s{i}"] for i in range(4)]
    outcome = run_in_child(CoreMLTarget(), package, inputs, latency=None, timeout_s=300)
    assert outcome.label == LABEL and outcome.outputs is not None, outcome.failure
    m = accuracy.compare(reference, [o[0] for o in outcome.outputs])
    broken = accuracy.within(m, accuracy.LIMITS["fp16"])
    assert broken and m["sqnr_db"] < 10.0, m


@toolchain
def test_the_interpreter_checks_elementwise_reduction_and_scan_ops(registry, tmp_path) -> None:
    """abs, clip, leaky_relu, elu, softplus, pow, sqrt, log, floor_div, reverse, tile, cumsum, reduce_sum/max and
    reduce_log_sum_exp: once "not checked" (bench/scalar_args_sweep.py), now judged against eager at fp32 (``mod``,
    torch.remainder, is left out here: its wrap-around makes near-ties that move top-1 at 143 dB)."""
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812

    class Elementwise(nn.Module):
        def forward(self, x):
            y = x.abs() + 0.5
            return (torch.clamp(x, -0.3, 0.4), F.leaky_relu(x, 0.2), F.elu(x, 0.5), F.softplus(x), torch.pow(y, 1.7),
                    torch.sqrt(y), torch.log(y), torch.floor_divide(x * 3, y),
                    x.flip(-1), x.repeat(1, 2, 1), x.cumsum(-1), x.sum(-1), x.amax(1), torch.logsumexp(x, -1))

    report = edgest.compile(Elementwise(), "coreml", input_shape=(1, 4, 8), precision="fp32", out_dir=tmp_path / "run",
                            registry=registry, latency=None, samples=2)
    acc = report.check("accuracy")
    assert acc.status == "passed", acc.reason
    assert len(acc.metrics["per_output"]) == 14 and min(o["sqnr_db"] for o in acc.metrics["per_output"]) > 100


@toolchain
def test_an_op_the_interpreter_lacks_is_not_checked_never_passed(registry, tmp_path) -> None:
    import torch
    from torch import nn

    class Sine(nn.Module):  # MIL "sin": converts, but the reference interpreter has no kernel for it
        def forward(self, x):
            return torch.sin(x).mean(-1)

    report = edgest.compile(Sine(), "coreml", input_shape=(1, 4, 8), out_dir=tmp_path / "run", registry=registry,
                            latency=FAST, samples=2)
    assert report.status == "incomplete"
    acc = report.check("accuracy")
    assert acc.status == "not_run" and not acc.metrics
    assert acc.reason == "not checked: op sin not implemented in the MIL reference interpreter"
    assert report.check("latency").status == "not_run"
    with pytest.raises(OpNotImplemented, match="op sin not implemented"):
        MILReferenceRunner(tmp_path / "run" / "model.mlpackage")


@on_mac
def test_fp16_runs_within_the_fp16_limits_on_macos(registry, tmp_path) -> None:
    report = edgest.compile(tiny_convnet(), "coreml", input_shape=(1, 3, 16, 16), out_dir=tmp_path / "run",
                            precision="fp16", target_options={"precision": "fp16"}, registry=registry,
                            latency=FAST, samples=8)
    assert report.status == "passed", report.error
    assert report.artifact.details["compute_precision"] == "FLOAT16"


def _small_cnn():
    """Convs large enough for coremltools.optimize to compress (it skips weights under 2,048 elements)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    ).eval()


@toolchain
@pytest.mark.parametrize(("scheme", "constexpr", "max_ratio"), [
    ("linear-int8", "constexpr_affine_dequantize", 0.6),
    ("palettize-4", "constexpr_lut_to_dense", 0.35),
    ("int4-block", "constexpr_blockwise_shift_scale", 0.4),
])
def test_compressed_weights_shrink_and_are_checked_by_the_mil_reference(scheme, constexpr, max_ratio, tmp_path) -> None:
    import torch

    from edgest.capture import capture

    model = _small_cnn()
    clips = [torch.randn(1, 3, 16, 16) for _ in range(3)]
    with torch.no_grad():
        eager = [model(x).numpy() for x in clips]
    opts = {"compress": scheme, **({"minimum_deployment_target": "iOS18"} if scheme == "int4-block" else {})}
    lowered = CoreMLTarget(**opts).lower(capture(model, (clips[0],)), (clips[0],), tmp_path)
    c = lowered.details["compression"]
    assert c["scheme"] == scheme and 0 < c["weights_bytes_after"] < max_ratio * c["weights_bytes_before"], c
    assert c["weights_bytes_after"] == (lowered.path / "Data/com.apple.CoreML/weights/weight.bin").stat().st_size
    assert lowered.details["mil_ops"]["top"].get(constexpr, 0) >= 2 and lowered.details["sha256_tree"] == tree_sha256(lowered.path)
    runner = MILReferenceRunner(lowered.path)
    m = accuracy.compare(eager, [runner.run([x.numpy()])[0] for x in clips])
    # judged at fp16's limits; and the compression shows (fp16 alone gave 58-71 dB on the tiny zoo models)
    assert not accuracy.within(m, accuracy.LIMITS["fp16"]) and m["sqnr_db"] < 65.0, m


def test_int4_per_block_needs_an_ios18_target(tmp_path) -> None:
    with pytest.raises(BadInput, match=r"compress='int4-block' needs minimum_deployment_target iOS18 or newer \(got iOS17\)"):
        CoreMLTarget(compress="int4-block").lower(None, (), tmp_path)
    with pytest.raises(BadInput, match="compress='int2' is not one of none, linear-int8"):
        CoreMLTarget(compress="int2")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow  # suite time (issue 18): W8A8 through the MIL reference, 46 s; the head-scales test keeps W8A8 in the default run
@toolchain
def test_w8a8_program_runs_in_the_mil_reference_like_torchs_quantised_program(tmp_path) -> None:
    """PT2E W8A8 (CoreMLQuantizer) → ct.convert: MIL quantize/dequantize ops reproduce torch's quantised program."""
    pytest.importorskip("executorch", reason="W8A8 uses ExecuTorch's CoreMLQuantizer (pip install -e targets/executorch)")
    import torch
    from torch import nn

    from edgest.capture import capture

    class SqueezeExcite(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.gate = nn.Conv2d(3, 32, 3, padding=1), nn.Conv2d(32, 32, 1)

        def forward(self, x):
            y = torch.relu(self.conv(x))
            return (y * torch.sigmoid(self.gate(y))).mean((2, 3))

    class Calibration:
        inputs: ClassVar[list] = []

    torch.manual_seed(0)
    model = SqueezeExcite().eval()
    clips = [torch.randn(1, 3, 16, 16) for _ in range(4)]
    Calibration.inputs = [[x.numpy()] for x in clips]
    target = CoreMLTarget(precision="fp32")
    quantized = target.quantizer("int8").quantize_program(capture(model, (clips[0],)), (clips[0],), Calibration, ())
    assert quantized.details["qdq_nodes"]["quantize_per_tensor"] > 0
    lowered = target.lower(quantized.program, (clips[0],), tmp_path)
    assert lowered.details["mil_ops"]["top"].get("quantize", 0) > 0
    runner = MILReferenceRunner(lowered.path)
    with torch.no_grad():
        torch_q = [quantized.program.module()(x).numpy() for x in clips]
        eager = [model(x).numpy() for x in clips]
    got = [runner.run([x.numpy()])[0] for x in clips]
    assert accuracy.compare(torch_q, got)["sqnr_db"] > 100.0
    assert not accuracy.within(accuracy.compare(eager, got), accuracy.LIMITS["int8"])
    assert target.quantizer("int8-weight") is None


@toolchain
def test_w8a8_head_keeps_its_scales_through_flatten(tmp_path, monkeypatch) -> None:
    """pool → flatten → dropout → linear (SqueezeTime's head): PT2E requantises after the dropout,
    and coremltools' int_op_canonicalization would drop that requantisation (it assumes dequantize →
    reshape → quantize share scale and zero point). The output rule keeps a last linear float, so it is off here:
    the same requantisation feeds any int8 linear that reads a pooled feature (a squeeze-excite gate)."""
    pytest.importorskip("executorch", reason="W8A8 uses ExecuTorch's CoreMLQuantizer (pip install -e targets/executorch)")
    import torch
    from torch import nn

    from edgest.capture import capture
    from edgest_coreml import convert
    from edgest_coreml import quantizer as coreml_quantizer

    monkeypatch.setattr(coreml_quantizer, "float_rules", lambda graph, held=(): {"output": set(), "tokens": set(),
                                                                                  "islands": set()})

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.pool = nn.Conv2d(3, 16, 3, padding=1), nn.AdaptiveAvgPool2d(1)  # a module: quantised output
            self.drop, self.fc = nn.Dropout(0.1), nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.drop(torch.flatten(self.pool(torch.relu(self.conv(x))), 1)))

    class Calibration:
        inputs: ClassVar[list] = []

    torch.manual_seed(0)
    model = Head().eval()
    clips = [torch.randn(1, 3, 8, 8) for _ in range(4)]
    Calibration.inputs = [[x.numpy()] for x in clips]
    target = CoreMLTarget(precision="fp32")
    quantized = target.quantizer("int8").quantize_program(capture(model, (clips[0],)), (clips[0],), Calibration, ())
    with torch.no_grad():
        torch_q = [quantized.program.module()(x).numpy() for x in clips]

    def sqnr_vs_torch(out: str) -> float:
        runner = MILReferenceRunner(target.lower(quantized.program, (clips[0],), tmp_path / out).path)
        return accuracy.compare(torch_q, [runner.run([x.numpy()])[0] for x in clips])["sqnr_db"]

    fixed = sqnr_vs_torch("fixed")
    monkeypatch.setattr(convert, "DROPPED_PASSES", ())  # coremltools' default pipeline: the head is mis-scaled
    default = sqnr_vs_torch("default")
    # measured: 45.7 dB (a pooled value rounding to the neighbouring level now and then) vs 1.1 dB
    assert fixed > 40.0 and default < 10.0


@toolchain
def test_add_sub_rsub_keep_their_alpha(tmp_path, monkeypatch) -> None:
    """torch.export passes ``alpha`` as a keyword, which coremltools 9's add/sub/rsub converters never read:
    convert() makes the scaled operand an explicit multiply first (tensor operands) or folds it (scalars)."""
    import numpy as np
    import torch
    from torch import nn

    from edgest.capture import capture
    from edgest_coreml import convert

    class Alphas(nn.Module):
        def forward(self, x):
            y = torch.sigmoid(x)
            return torch.cat([x.add(y, alpha=0.5), x.sub(y, alpha=3.0), torch.rsub(x, y, alpha=0.25),
                              x.add(2.0, alpha=0.5), x.add(y)], -1)

    torch.manual_seed(0)
    x = torch.randn(2, 8)
    expected = Alphas()(x).numpy()
    program = capture(Alphas(), (x,))
    lowered = CoreMLTarget(precision="fp32").lower(program, (x,), tmp_path / "fixed")
    assert lowered.details["alphas_made_explicit"] == 4
    got = MILReferenceRunner(lowered.path).run([x.numpy()])[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    # coremltools alone: every alpha is dropped (x + y, x - y, y - x, x + 2)
    monkeypatch.setattr(convert, "_scale_alpha_operands", lambda program: 0)
    bare = MILReferenceRunner(CoreMLTarget(precision="fp32").lower(program, (x,), tmp_path / "bare").path).run([x.numpy()])[0]
    xn, y = x.numpy(), torch.sigmoid(x).numpy()
    np.testing.assert_allclose(bare, np.concatenate([xn + y, xn - y, y - xn, xn + 2.0, xn + y], -1), rtol=0, atol=1e-6)


@toolchain
def test_spiking_lmuformer_spikes_like_eager_at_fp32(registry, tmp_path) -> None:
    """The LIF leak ``g + (1 - 1/tau) w`` is an add with alpha=0.5: dropped, the membranes grew and every
    later spike decorrelated (measured SQNR 0.9 dB, top-1 agreement 25 %); kept, the spikes are eager's
    (tau=2: the scale is a power of two, so the explicit multiply is exact)."""
    import torch

    from edgest.capture import capture
    from edgest.testing.weights import responsive

    entry = registry.model("lmuformer_spiking_tiny")
    torch.manual_seed(0)
    model = responsive(entry.build(), tuple(entry.spec.input.shape))  # at init no neuron fires
    clips = [torch.randn(*entry.spec.input.shape) for _ in range(4)]
    lowered = CoreMLTarget(precision="fp32").lower(capture(model, (clips[0],)), (clips[0],), tmp_path)
    assert lowered.details["alphas_made_explicit"] > 0
    runner = MILReferenceRunner(lowered.path)
    with torch.no_grad():
        eager = [model(x).numpy() for x in clips]
    m = accuracy.compare(eager, [runner.run([x.numpy()])[0] for x in clips])
    assert m["sqnr_db"] >= 100.0 and m["top1_agreement"] == 1.0, m


@pytest.mark.slow  # suite time (issue 18): 16 s; the spiking model's fp32 MIL test stays in the default run
@toolchain
def test_fp16_failure_of_a_spiking_model_at_stand_in_weights_is_blamed_on_fp16_not_on_core_ml(registry, tmp_path) -> None:
    """At untrained stand-in weights many neurons sit near threshold, so fp16 rounding flips spikes in eager PyTorch
    too: the failed check says so (trained, the model passes fp16: tests/models/test_trained_int8.py)."""
    from edgest.testing.weights import write_responsive_weights

    weights = write_responsive_weights(registry.model("lmuformer_spiking_tiny"), tmp_path / "w.pt")
    report = edgest.compile("lmuformer_spiking_tiny", "coreml", out_dir=tmp_path / "half", weights=weights, samples=8,
                            task_samples=0, latency=None, registry=registry)
    acc = report.check("accuracy")
    assert report.precision == "fp16" and acc.status == "failed"
    assert acc.metrics["eager_half_sqnr_db"] < accuracy.LIMITS["fp16"]["min_sqnr_db"]
    assert "; eager PyTorch at fp16 breaks the limits too (SQNR " in acc.reason
    assert "the model is not fp16-faithful whatever the target; compile with --precision fp32" in report.error


@toolchain
def test_coreml_quantizer_patterns_are_exported_once_per_process(monkeypatch) -> None:
    """CoreMLQuantizer exports every pattern graph on each prepare_pt2e (~80 s here); the patterns are the
    same for every model, so edgest keeps them: one export per (factory, closed-over functions, input shapes)."""
    pytest.importorskip("executorch", reason="W8A8 uses ExecuTorch's CoreMLQuantizer (pip install -e targets/executorch)")
    import torch
    from executorch.backends.apple.coreml.quantizer import _coreml_quantizer_utils as utils

    from edgest.quantize import patterns
    from edgest_coreml.quantizer import cache_pattern_graphs

    exported = []

    def fake_export(pattern, example_inputs, is_cuda=False):
        exported.append(type(pattern).__qualname__)
        return torch.nn.Module()

    monkeypatch.setattr(utils, "_get_aten_graph_module", lambda *a: pytest.fail("captured through Dynamo"))
    monkeypatch.setattr(patterns, "pattern_graph", fake_export)  # the non-strict capture the cache fills from
    cache_pattern_graphs()

    def factory(fn):
        class Pattern(torch.nn.Module):
            def forward(self, x):
                return fn(x)

        return Pattern()

    x = (torch.randn(1, 3),)
    first = utils._get_aten_graph_module(factory(torch.relu), x)
    second = utils._get_aten_graph_module(factory(torch.relu), x)
    utils._get_aten_graph_module(factory(torch.sigmoid), x)
    utils._get_aten_graph_module(factory(torch.relu), (torch.randn(2, 3),))
    assert len(exported) == 3 and first is not second  # relu once per shape, sigmoid once; callers get copies
    cache_pattern_graphs()  # idempotent: no second wrapper
    utils._get_aten_graph_module(factory(torch.relu), x)
    assert len(exported) == 3


@toolchain
def test_coreml_int8_skips_the_qat_conv_bn_fold(monkeypatch) -> None:
    """convert_pt2e searches for the conv+BN pattern QAT leaves (96 patterns through Dynamo, ~45 s here) whenever
    the graph has a BatchNorm; after a post-training prepare there is none to find (identical graphs checked on
    squeezetime_tiny), so the Core ML quantizer skips it as the ExecuTorch and LiteRT ones do."""
    pytest.importorskip("executorch", reason="W8A8 uses ExecuTorch's CoreMLQuantizer (pip install -e targets/executorch)")
    import torch
    import torchao.quantization.pt2e.quantize_pt2e as qp
    from torch import nn

    from edgest.capture import capture

    monkeypatch.setattr(qp, "_fold_conv_bn_qat", lambda model: pytest.fail("searched for QAT conv+BN patterns"))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(),
                          nn.Linear(64, 2)).eval()
    x = torch.randn(1, 3, 8, 8)

    class Calibration:
        inputs: ClassVar[list] = [[x.numpy()]]

    quantized = CoreMLTarget(precision="fp32").quantizer("int8").quantize_program(capture(model, (x,)), (x,),
                                                                                   Calibration, ())
    assert quantized.details["qdq_nodes"].get("quantize_per_tensor", 0) >= 1


_CONVERT_IN_A_FRESH_PROCESS = """
import pathlib, sys, torch
from edgest_coreml.convert import convert
m = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()
convert(torch.export.export(m, (torch.randn(1, 8),)), [torch.randn(1, 8)], pathlib.Path(sys.argv[1]))
import sklearn  # importable again afterwards
print(sorted(n for n in ("sklearn", "xgboost") if n in sys.modules))
"""


def test_a_conversion_does_not_import_scikit_learn_and_leaves_it_importable(tmp_path) -> None:
    """coremltools probes scikit-learn and XGBoost on import (1.5 s of CPU per compile) for converters a torch
    program never uses; the conversion blocks that probe only while coremltools is first imported."""
    import subprocess

    pytest.importorskip("sklearn", reason="scikit-learn is not installed: nothing to keep from being imported")
    done = subprocess.run([sys.executable, "-c", _CONVERT_IN_A_FRESH_PROCESS, str(tmp_path / "m.mlpackage")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['sklearn']"  # only the explicit import after it
    assert (tmp_path / "m.mlpackage" / "Manifest.json").is_file()


@toolchain
def test_coreml_int8_takes_a_sliced_conv_weight_and_a_shared_conv_before_a_batch_norm(monkeypatch) -> None:
    """prepare_pt2e folds every BN into its conv with torchao first: the trained spiking LMUFormer failed Core ML int8
    with "Expected get_attr node, got call_function", and a BN after a conv another op reads is folded wrongly; with
    edgest's rewrites first (as ExecuTorch and OpenVINO do) the trained model passes (17.5 dB, task drop -0.4 pt)."""
    pytest.importorskip("executorch", reason="W8A8 uses ExecuTorch's CoreMLQuantizer (pip install -e targets/executorch)")
    from edgest.quantize import prequant
    from edgest.testing.folds import quantised_lmu_shapes

    details, sqnr = quantised_lmu_shapes(CoreMLTarget(precision="fp32").quantizer("int8"))
    assert details["constant_weights_folded"] == 1 and details["batch_norms_as_depthwise_conv"] == 1
    monkeypatch.setattr(prequant, "batch_norm_as_depthwise_conv", lambda gm, **_: 0)
    _, wrongly_folded = quantised_lmu_shapes(CoreMLTarget(precision="fp32").quantizer("int8"))  # 9.3 vs 12.1 dB here
    assert sqnr > wrongly_folded + 2, (sqnr, wrongly_folded)


def _tiny_program(offset: float = 0.0):
    """tiny_convnet exported at a 1x3x16x16 input, that input, and four seeded noise calibration inputs (+ ``offset``)."""
    import numpy as np
    import torch

    from edgest.data.calibration import CalibrationSet

    x = torch.randn(1, 3, 16, 16)
    rng = np.random.default_rng(0)
    cal = CalibrationSet([(rng.standard_normal((1, 3, 16, 16), dtype=np.float32) + offset,) for _ in range(4)],
                         f"noise + {offset}")
    return torch.export.export(tiny_convnet(), (x,), strict=False), x, cal


@toolchain
def test_w8a8_keeps_float_what_executorch_keeps_float_and_takes_quant_skip() -> None:
    """The float rules of edgest.quantize.float_ops (the output layer, token adds/cats, float islands) and
    ``--quant-skip`` hold their nodes out of CoreMLQuantizer's patterns, as on ExecuTorch and LiteRT."""
    pytest.importorskip("executorch", reason="W8A8 uses ExecuTorch's CoreMLQuantizer (pip install -e targets/executorch)")
    import torch

    program, x, cal = _tiny_program()
    quantizer = CoreMLTarget(precision="fp32").quantizer("int8")
    full = quantizer.quantize_program(program, (x,), cal, [])
    kept = quantizer.quantize_program(program, (x,), cal, ["0"])  # tiny_convnet's first conv

    def int8_weights(q) -> int:
        return sum(1 for n in q.program.graph.nodes if "dequantize_per_channel" in str(n.target))

    # two convs int8, the linear the output rule keeps float; skipping "0" leaves its weight float, and the
    # depthwise conv after it, with no int8 neighbour left, a float island
    assert full.details["float_output_ops"] == {"linear": 1} and "kept float by rule: output 1" in full.summary
    assert int8_weights(full) == 2 and int8_weights(kept) == 0
    assert full.details["float_islands"] == {} and kept.details["float_islands"] == {"conv2d": 1}
    assert kept.details["kept_float"] == ["0"] and "; kept float: 0;" in kept.summary
    with torch.no_grad():
        assert full.program.module()(x).dtype == torch.float32
    with pytest.raises(BadInput, match=r"--quant-skip 'layer9' is not a module of the model; e\.g\. 0, 1"):
        quantizer.quantize_program(program, (x,), cal, ["layer9"])


@toolchain
def test_int8_scheme_affine_gives_activations_zero_points_and_is_refused_at_a_float_precision(registry, tmp_path) -> None:
    """``int8_scheme=affine``: coremltools' affine scheme (trained emov2_tiny_video passes int8 with it, fails symmetric)."""
    pytest.importorskip("executorch", reason="W8A8 uses ExecuTorch's CoreMLQuantizer (pip install -e targets/executorch)")
    program, x, cal = _tiny_program(offset=1.0)  # off centre: affine ranges get zero points of their own

    def zero_points(int8_scheme: str) -> set[int]:
        q = CoreMLTarget(precision="fp32", int8_scheme=int8_scheme).quantizer("int8").quantize_program(program, (x,), cal, [])
        assert q.details["config"]["quantization_scheme"] == int8_scheme and int8_scheme in q.details["activations"]
        return {n.args[2] for n in q.program.graph.nodes if "quantize_per_tensor" in str(n.target)}

    assert zero_points("symmetric") <= {0, 128}  # uint8 symmetric: 0 (non-negative ranges) or the middle
    assert zero_points("affine") - {0, 128}  # each range's own zero point
    with pytest.raises(BadInput, match="int8_scheme"):
        edgest.compile(tiny_convnet(), "coreml", input_shape=(1, 3, 16, 16), out_dir=tmp_path / "f",
                       target_options={"int8_scheme": "affine"}, registry=registry, latency=None)
    assert not (tmp_path / "f").exists()
