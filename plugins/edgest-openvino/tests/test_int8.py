"""int8 through NNCF: quantised on the captured program, run as int8 kernels by the CPU plugin, with --quant-skip
and the sensitivity table working on torch module names."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import edgest
from edgest.testing import tiny_convnet

SHAPE = (1, 3, 16, 16)

pytest.importorskip("nncf", reason="nncf not installed (pip install -e plugins/edgest-openvino)")


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory: pytest.TempPathFactory) -> edgest.Report:
    """tiny_convnet (conv 0, depthwise conv 3, linear 7) at int8, with the sensitivity table."""
    report = edgest.compile(tiny_convnet(), "openvino", precision="int8", input_shape=SHAPE,
                            out_dir=tmp_path_factory.mktemp("ovq") / "run", latency=None, samples=4,
                            passes=[("quantize", {"scheme": "int8", "sensitivity": True, "calibration_size": 8})])
    assert report.status == "passed", report.error
    return report


def test_nncf_quantises_every_weighted_layer_and_the_cpu_runs_them_in_int8(int8_run: edgest.Report) -> None:
    (record,) = [p for p in int8_run.passes if p.name == "quantize"]
    quant = int8_run.artifact.details["quantization"]  # a program-stage quantizer's details land on the artifact
    assert quant["quantizer"].startswith("NNCF ") and quant["stage"] == "program"
    assert quant["int8_ops_by_kind"] == {"conv2d": 2, "linear": 1} and quant["calibration_size"] == 8
    assert record.summary.startswith("NNCF int8: 3 ops int8 (conv2d ×2, linear ×1)")
    assert record.accuracy_delta is not None and record.accuracy_delta["sqnr_db"] > 15  # eager program, float vs int8
    details = int8_run.artifact.details
    # what stays float runs at the CPU plugin's own default on this CPU (no hint recorded), and the report says which
    assert details["fake_quantize_ops"] > 0 and details["inference_precision"] == "default"
    assert details["execution_precision"] == _plugin_default() and _plugin_default() in details["execution_note"]
    layers = details["compute_layers_by_precision"]
    assert layers.get("u8", 0) + layers.get("i8", 0) == 3 and "f32" not in layers  # the runtime's own reading
    assert int8_run.artifact.toolchain["nncf"].startswith("3.")
    acc = int8_run.check("accuracy")
    assert acc.status == "passed" and acc.metrics["sqnr_db"] >= acc.limits["min_sqnr_db"]


def _plugin_default() -> str:
    """The CPU plugin's execution precision when given no hint, on this CPU (f32, or bf16 on bf16/AMX hosts)."""
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()


def test_the_precision_option_pins_what_stays_float_and_the_runner_gives_no_hint_otherwise(
        int8_run: edgest.Report, tmp_path: Path) -> None:
    from edgest_openvino.device import PLUGIN_DEFAULT, compile_config
    from edgest_openvino.target import OpenVINORunner, OpenVINOTarget

    from edgest.quantization import is_quantized

    quantized = _quantize([]).program
    plain = torch.export.export(tiny_convnet(), (torch.randn(*SHAPE),), strict=False)
    assert is_quantized(quantized) and not is_quantized(plain)
    assert OpenVINOTarget().hint(quantized) == PLUGIN_DEFAULT and OpenVINOTarget().hint(plain) == "f32"
    assert OpenVINOTarget(precision="fp32").hint(quantized) == "f32"
    assert OpenVINOTarget(precision="bf16").hint(quantized) == "bf16"
    assert "INFERENCE_PRECISION_HINT" not in compile_config(PLUGIN_DEFAULT, 1)
    assert compile_config("f32", 2) == {"INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY",
                                        "INFERENCE_PRECISION_HINT": "f32"}
    runner = OpenVINORunner(Path(int8_run.run_dir) / "model.xml", 1)
    assert runner.requested == PLUGIN_DEFAULT and runner.precision == _plugin_default()
    assert runner.label.endswith(f"float parts at its default here, {_plugin_default()}")  # a device report says it
    assert int8_run.check("accuracy").host["runtime"] == runner.label
    pinned = edgest.compile(tiny_convnet(), "openvino", precision="int8", input_shape=SHAPE, out_dir=tmp_path / "run",
                            latency=None, samples=4, target_options={"precision": "fp32"})
    details = pinned.artifact.details
    assert pinned.status == "passed", pinned.error
    assert details["inference_precision"] == "f32" and details["execution_precision"] == "f32"
    assert "execution_note" not in details and OpenVINORunner(Path(pinned.run_dir) / "model.xml", 1).label == ""


def test_sensitivity_ranks_the_torch_modules(int8_run: edgest.Report) -> None:
    (record,) = [p for p in int8_run.passes if p.name == "quantize"]
    table = record.details["sensitivity"]
    assert {row["layer"] for row in table["layers"]} == {"0", "3", "7"} and table["not_measured"] == []
    assert all(row["sqnr_if_float_db"] >= table["sqnr_all_db"] - 1.0 for row in table["layers"])


def _quantize(skip: list[str], inputs: list[np.ndarray] | None = None, **options: str) -> edgest.quantization.Quantized:
    import torch
    from edgest_openvino.target import OpenVINOTarget

    model, x = tiny_convnet(), (torch.randn(*SHAPE),)
    program = torch.export.export(model, x, strict=False)
    rng = np.random.default_rng(0)
    inputs = inputs or [rng.standard_normal(SHAPE, dtype=np.float32) for _ in range(4)]
    calibration = SimpleNamespace(inputs=[(a,) for a in inputs], source="seeded normal noise")
    quantizer = OpenVINOTarget(**options).quantizer("int8")
    assert quantizer is not None and quantizer.stage == "program"
    return quantizer.quantize_program(program, x, calibration, skip)


def test_quant_skip_keeps_the_named_module_float() -> None:
    done = _quantize(["7"])
    assert done.details["int8_ops_by_kind"] == {"conv2d": 2}  # the linear stayed float
    assert done.summary.endswith("; kept float: 7")
    linear = [n for n in done.program.graph.nodes if n.op == "call_function" and "linear" in str(n.target)]
    assert len(linear) == 1 and "dequantize" not in str(linear[0].args[0].target)


def test_activation_ranges_are_the_calibration_sets_min_and_max_unless_the_option_says_otherwise() -> None:
    """NNCF's own default (the mean of per-input extremes) clipped the values some inputs reach: trained
    lmuformer_video_tiny 11.0 dB and a 2.7 pt task drop, 25.1 dB and none with min-max (bench/openvino_int8_ranges.py)."""
    from edgest_openvino.target import OpenVINOTarget

    rng = np.random.default_rng(1)
    outlier = np.full(SHAPE, 8, np.float32)
    outlier.flat[0] = -8
    inputs = [rng.uniform(-1, 1, SHAPE).astype(np.float32) for _ in range(3)] + [outlier]

    def input_scale(done: edgest.quantization.Quantized) -> float:
        first = next(n for n in done.program.graph.nodes if n.op == "call_function" and ".quantize_per_tensor" in str(n.target))
        return float(first.args[1])

    default, mean = _quantize([], inputs), _quantize([], inputs, activation_ranges="mean_minmax")
    assert default.details["activation_ranges"] == "minmax" and "min-max" in default.details["activations"]
    assert mean.details["activation_ranges"] == "mean_minmax"
    # one input reaches ±8, the others ±1: the whole range is kept, or the mean of the four extremes (±2.75)
    assert input_scale(default) * 127 == pytest.approx(8, rel=0.05)
    assert input_scale(mean) / input_scale(default) == pytest.approx((8 + 3 * 1) / 4 / 8, rel=0.05)
    with pytest.raises(edgest.BadInput, match="activation_ranges='p99' is not one of minmax, mean_minmax"):
        OpenVINOTarget(activation_ranges="p99")


def test_quant_skip_refuses_a_name_that_is_no_module() -> None:
    with pytest.raises(edgest.BadInput, match=r"--quant-skip 'fc' is not a module of the model; e\.g\. 0, 1, 2, 3"):
        _quantize(["fc"])


@pytest.mark.slow
def test_squeezetime_tiny_int8_reports_its_accuracy(tmp_path: Path) -> None:
    report = edgest.compile("squeezetime_tiny", "openvino", precision="int8", out_dir=tmp_path / "run", latency=None)
    acc = report.check("accuracy")
    assert acc.status in ("passed", "failed") and acc.metrics["sqnr_db"] > 0  # random init: judged, figures reported
    assert report.artifact.details["compute_layers_by_precision"].get("u8", 0) > 0


@pytest.mark.slow
def test_trained_squeezetime_tiny_int8_meets_the_task_limits(trained_weights: Callable[[str], Path], tmp_path: Path) -> None:
    report = edgest.compile("squeezetime_tiny", "openvino", precision="int8", out_dir=tmp_path / "run",
                            weights=trained_weights("squeezetime_tiny"), latency=None)
    m = report.check("accuracy").metrics
    assert m["task_judged"] and report.status == "passed", (report.error, {k: m.get(k) for k in (
        "sqnr_db", "top1_agreement", "task_top1_eager", "task_top1", "task_top1_drop_pts")})
    assert m["top1_agreement"] >= 0.95 and m["task_top1_drop_pts"] <= 1.0


def test_importing_nncf_for_int8_logs_nothing() -> None:
    """nncf imports torchao, which logs a warning for each CUDA kernel library it cannot load on a CPU host; a
    ``--quiet`` int8 compile printed them. Run where nothing has imported nncf or torchao yet."""
    from edgest.testing.chatter import stdout_without_chatter

    code = ("import logging, sys; from edgest_openvino.quantizer import _nncf\n"
            "logging.basicConfig(level=logging.INFO)  # a user's program that logs at INFO\n"
            "with _nncf() as nncf:\n"
            "    nncf.IgnoredScope(types=['softmax'])  # importing nncf reset its logger to INFO: one line per ignored op\n"
            "    assert logging.getLogger('nncf').getEffectiveLevel() >= logging.ERROR\n"
            "assert 'torchao' in sys.modules, 'the test no longer covers the torchao import'\n")
    stdout_without_chatter(code)


class _TinyAttention(torch.nn.Module):
    """Token embedding, one self-attention block with its MLP, a linear head: a ViViT in miniature."""

    def __init__(self, dim: int = 32, tokens: int = 16) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(8, dim)
        self.attn = torch.nn.MultiheadAttention(dim, 4, batch_first=True)
        self.norm = torch.nn.LayerNorm(dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(), torch.nn.Linear(2 * dim, dim))
        self.head = torch.nn.Linear(dim * tokens, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h = h + self.attn(h, h, h, need_weights=False)[0]
        h = h + self.mlp(self.norm(h))
        return self.head(h.flatten(1))


def test_with_attention_only_the_weighted_layers_run_int8(tmp_path: Path) -> None:
    """NNCF's defaults quantise attention's activation products too (ViViT-Ti: 2.9 dB); with attention in the
    graph the target keeps everything but the weighted layers float, and the int8 artifact stays faithful."""
    from edgest_openvino.quantizer import ATTENTION_FLOAT_TYPES, has_attention

    torch.manual_seed(0)
    model = _TinyAttention().eval()
    program = torch.export.export(model, (torch.randn(1, 16, 8),), strict=False)
    assert has_attention(program.graph) and not has_attention(torch.export.export(tiny_convnet(), (torch.randn(*SHAPE),)).graph)
    report = edgest.compile(model, "openvino", precision="int8", input_shape=(1, 16, 8), out_dir=tmp_path / "run",
                            latency=None, samples=4)
    assert report.status == "passed", report.error
    quant = report.artifact.details["quantization"]
    assert quant["float_op_types"] == list(ATTENTION_FLOAT_TYPES) and "only the weighted layers" in quant["activations"]
    assert set(quant["int8_ops_by_kind"]) == {"linear"} and report.check("accuracy").metrics["sqnr_db"] >= 15


def test_a_sliced_conv_weight_and_a_shared_conv_before_a_batch_norm_quantise_faithfully() -> None:
    """``nncf.quantize`` failed on the first ("Expected get_attr node, got call_function") and folds the second's BN
    into a conv whose other reader then sees the BN's output; edgest's rewrites (edgest.quantization) come first."""
    from edgest_openvino.target import OpenVINOTarget

    from edgest.testing.folds import quantised_lmu_shapes

    details, sqnr = quantised_lmu_shapes(OpenVINOTarget().quantizer("int8"))
    assert details["constant_weights_folded"] == 1 and details["batch_norms_as_depthwise_conv"] == 1
    assert details["int8_ops_by_kind"] == {"conv1d": 2}  # NNCF keeps the depthwise conv of bn2 float
    assert sqnr > 15  # edgest's int8 limit


def test_an_int8_only_option_is_refused_at_a_float_precision_and_left_to_the_int8_cells_of_a_bench(tmp_path: Path) -> None:
    """activation_ranges acts at int8 only (option_precisions): an fp32 compile naming it was silently the same as
    without it; now it is one line, and a bench over fp32 and int8 gives it to its int8 cells alone."""
    from edgest.bench import run_bench
    from edgest.checks.latency import LatencyConfig
    from edgest.plan import plan

    with pytest.raises(edgest.BadInput, match="^target option activation_ranges of 'openvino' acts at int8 only, and this "
                                              "compile is fp32; drop it, or add --precision int8$"):
        plan(tiny_convnet(), "openvino", input_shape=SHAPE, out_dir=tmp_path / "fp32",
                    target_options={"activation_ranges": "mean_minmax"})
    with pytest.raises(edgest.BadInput, match="^target option activation_ranges of 'openvino' acts at int8 only, and "
                                              r"this bench has no such precision \(fp32, bf16\); drop it, or add int8 to "
                                              "--precisions$"):
        run_bench(["squeezetime_tiny"], ["openvino"], ["fp32", "bf16"], tmp_path / "float-bench",
                  target_options={"openvino": {"activation_ranges": "mean_minmax"}})
    assert not (tmp_path / "float-bench").exists()
    doc = run_bench(["lmuformer_tiny"], ["openvino"], ["fp32", "int8"], tmp_path / "bench", samples=2,
                    target_options={"openvino": {"activation_ranges": "mean_minmax"}},
                    latency=LatencyConfig(warmup=0, min_runs=1, min_seconds=0.0))
    cells = {c["precision"]: c for c in doc["cells"] if c.get("in_matrix")}
    assert cells["fp32"]["status"] == "passed", cells["fp32"].get("error")
    report = json.loads((tmp_path / "bench" / cells["int8"]["run_dir"] / "report.json").read_text())
    assert report["artifact"]["details"]["quantization"]["activation_ranges"] == "mean_minmax"


def test_activations_are_asymmetric_unless_the_option_says_symmetric() -> None:
    """A skewed activation ([-1, 7] here; a shifted LayerNorm or BN output, a GELU in a model) gets its own zero
    point: a symmetric scale spends half its steps on the side it barely reaches. Trained emov2_tiny_video failed
    its limits symmetric (94.3 % agreement, task drop 1.2 pt) and passes asymmetric (97.3 %, 0.8 pt)."""
    rng = np.random.default_rng(2)
    inputs = [rng.uniform(-1, 7, SHAPE).astype(np.float32) for _ in range(4)]
    for x in inputs:
        x.flat[0], x.flat[1] = -1, 7

    def input_qparams(done: edgest.quantization.Quantized) -> tuple[float, int]:
        first = next(n for n in done.program.graph.nodes if n.op == "call_function" and ".quantize_per_tensor" in str(n.target))
        return float(first.args[1]), int(first.args[2])

    asym, sym = _quantize([], inputs), _quantize([], inputs, activation_scheme="symmetric")
    assert asym.details["activation_scheme"] == "asymmetric" and asym.details["preset"] == "mixed (asymmetric activations)"
    assert sym.details["activation_scheme"] == "symmetric" and sym.details["preset"] == "performance (symmetric activations)"
    (a_scale, a_zero), (s_scale, s_zero) = input_qparams(asym), input_qparams(sym)
    assert a_scale * 255 == pytest.approx(8, rel=0.05) and a_zero != s_zero  # the range's own width, offset
    assert s_scale / a_scale == pytest.approx((7 / 127) / (8 / 255), rel=0.05)  # symmetric: ±7 in 255 steps


def test_weights_take_seven_bits_where_the_cpu_would_saturate_unless_the_option_says() -> None:
    """x86 without VNNI adds u8×s8 product pairs in int16 and saturates: there NNCF's overflow fix gives 7-bit
    weights to every layer it concerns (NNCF's default: the first layer only; NNCF leaves some layers 8-bit). On an AVX2 CPU that default left a small
    attention model's int8 IR at 11.1 dB (test_with_attention_only_the_weighted_layers_run_int8)."""
    from edgest_openvino.quantizer import overflow_fix

    def seven_bit_weights(done: edgest.quantization.Quantized) -> int:
        consts = {**dict(done.program.named_buffers()), **done.program.constants}
        weights = [v for k, v in consts.items() if "compressed_weight" in k and v.dtype == torch.int8]
        assert weights, sorted(consts)
        return sum(int(w.abs().max()) <= 64 for w in weights)

    fixes = ("enable", "first_layer_only", "disable")
    auto, (enable, first, disable) = _quantize([]), (_quantize([], overflow_fix=f) for f in fixes)
    assert seven_bit_weights(enable) > seven_bit_weights(first) > seven_bit_weights(disable) == 0
    assert "7-bit weights" in enable.summary and "7-bit" in enable.details["weights"] and "7-bit" not in first.summary
    assert enable.details["overflow_fix_reason"] == "chosen with --target-option overflow_fix"
    host_fix, why = overflow_fix()
    assert (auto.details["overflow_fix"], auto.details["overflow_fix_reason"]) == (host_fix, why)
    assert seven_bit_weights(auto) == seven_bit_weights(enable if host_fix == "enable" else first)
