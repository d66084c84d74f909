"""Variants by option: --model-option typing and refusal, --input-shape rebuilds, K600/HMDB51 heads,
EMOv2-20M, SqueezeTime T=8, and the parameters and MACs a report and `edgest list models` give.

Full-size models are only built on the meta device (no memory, no init). The expected parameter
counts are not read off edgest: the two formulas below derive them from the official code's
modules, layer by layer, for the official configs (and are themselves checked against the counts
the official releases are known to have).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import edgest
from edgest.errors import BadInput, PluginError
from edgest.model import ModelEntry, count_params, model_stats
from edgest.model_options import parse_items, resolve, typed_options
from edgest.options import Text
from edgest.plan import plan
from edgest.plugins import get_registry
from edgest.records import InputSpec, ModelSpec, Report


def _conv(cin: int, cout: int, k: int, groups: int = 1, bias: bool = True) -> int:
    return cout * (cin // groups) * k * k + (cout if bias else 0)


def official_squeezetime_params(frames: int, classes: int) -> int:
    """xinghaochen/SqueezeTime ``mmaction/models/backbones/SqueezeTime.py`` (depth 50, input_channels=3*T,
    pos_dim [56, 28, 14, 7]) plus the I2DHead of ``configs/recognition/SqueezeTime/*.py`` (2048 -> classes)."""
    def ctl(c: int, pos: int) -> int:  # its Conv2d: param_conv, temporal_conv, spatial_conv (short + glo_conv + pos_embed)
        return (2 * c * c + 2 * c + c * c + _conv(c, c, 3) + _conv(c, 16, 3) + 32 + _conv(16, 16, 7) + 32
                + _conv(16, c, 3) + 16 * pos * pos)
    total, inp = _conv(3 * frames, 64, 5, bias=False) + 128, 64
    for stage, (blocks, planes, pos) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), (56, 28, 14, 7))):
        for j in range(blocks):
            if j == 0 and stage > 0:  # downsample: depthwise k2/s2 conv (bias) + BN
                total += _conv(inp, inp, 2, groups=inp) + 2 * inp
            total += inp * planes + 2 * planes + ctl(planes, pos) + 2 * planes + planes * 4 * planes + 8 * planes
            if j == 0:  # shortcut_conv: 1x1 (no bias) + BN
                total += inp * 4 * planes + 8 * planes
            inp = 4 * planes
    return total + 2048 * classes + classes


def official_emov2_params(depths: tuple, dims: tuple, exp_ratios: tuple, classes: int = 1000) -> int:
    """zhangzjn/EMOv2 ``model/lib_emo/emo2.py`` ``EMO2`` with the k5_hybrid settings (hybrid_eopss [[0], [0],
    [3], [3]], qkv_bias, dw 5, layer scale): stem, iiRMB blocks (norm, eop, conv_local, proj, ls), norm, head."""
    stem = dims[0] // 2
    total = _conv(3, stem, 3) + 2 * stem + _conv(stem, stem, 3, groups=stem, bias=False) + 2 * stem + stem * stem
    prev = stem
    for i in range(4):
        for j in range(depths[i]):
            mid = int(prev * (exp_ratios[i] * 2 if j == 0 else exp_ratios[i]))
            total += 2 * prev  # bn_2d or ln_2d
            attention = i >= 2 and j > 0  # EW_MHSA_Hybrid: qk (bias) and v (bias); else Conv (bias)
            total += (_conv(prev, 2 * prev, 1) + _conv(prev, mid, 1)) if attention else _conv(prev, mid, 1)
            total += _conv(mid, mid, 5, groups=mid, bias=False) + 2 * mid + mid * dims[i] + dims[i]
            prev = dims[i]
    return total + 2 * prev + prev * classes + classes


# --- the official counts, as the formulas give them -----------------------------------------------

def test_the_formulas_reproduce_the_known_official_counts():
    """The formulas are checked where the figure is known: SqueezeTime K400 and EMOv2-1M/2M/5M."""
    assert official_squeezetime_params(16, 400) == 29_706_688
    assert official_emov2_params((2, 2, 8, 3), (32, 48, 80, 180), (2.0, 2.5, 3.0, 3.5)) == 1_460_844
    assert official_emov2_params((3, 3, 9, 3), (32, 48, 120, 200), (2.0, 2.5, 3.0, 3.5)) == 2_384_312
    assert official_emov2_params((3, 3, 9, 3), (48, 72, 160, 288), (2.0, 3.0, 4.0, 4.0)) == 5_126_440


def test_emov2_20m_has_the_official_config_parameter_count():
    # official EMO2_20M_k5_hybrid: depths [3, 3, 13, 3], embed_dims [64, 128, 320, 448], exp_ratios
    # [2, 3, 4, 4], dim_heads [16, 32, 32, 32]; the formula above over it gives 20,195,208
    expected = official_emov2_params((3, 3, 13, 3), (64, 128, 320, 448), (2.0, 3.0, 4.0, 4.0))
    assert expected == 20_195_208
    entry = get_registry().model("emov2_20m")
    assert entry.spec.config["dims"] == (64, 128, 320, 448) and entry.spec.config["dim_heads"] == (16, 32, 32, 32)
    assert model_stats(entry)["params"] == expected


@pytest.mark.parametrize("how", ["input_shape", "model_option"])
def test_squeezetime_at_8_frames_has_the_official_count(tmp_path, how):
    kw = {"input_shape": "1x3x8x224x224"} if how == "input_shape" else {"model_options": {"num_frames": 8}}
    p = plan("squeezetime", "eager", out_dir=tmp_path / "r", **kw)
    assert p.spec.input.shape == (1, 3, 8, 224, 224) and p.spec.config["num_frames"] == 8
    # official backbone with input_channels=24 and a 2048->400 head: 29,668,288
    assert model_stats(p.model, p.spec)["params"] == official_squeezetime_params(8, 400) == 29_668_288


@pytest.mark.parametrize("classes", [600, 51])  # Kinetics-600, HMDB51 (the official fine-tunes)
def test_num_classes_builds_the_dataset_head(tmp_path, classes):
    p = plan("squeezetime", "eager", out_dir=tmp_path / "r", model_options={"num_classes": Text(str(classes))})
    assert p.spec.num_classes == classes and p.spec.input.shape == (1, 3, 16, 224, 224)
    with torch.device("meta"):
        model = p.model.build(p.spec.config)
    assert model.fc.out_features == classes
    assert count_params(model) == official_squeezetime_params(16, classes)


# --- typing and refusal ---------------------------------------------------------------------------

def test_command_line_text_is_typed_by_the_registered_config():
    entry = get_registry().model("squeezetime")
    typed = typed_options(entry, {"num_frames": Text("8"), "layers": Text("2,2,2,2"), "stem_width": 32})
    assert typed == {"num_frames": 8, "layers": (2, 2, 2, 2), "stem_width": 32}
    emo = typed_options(get_registry().model("emov2_5m"), {"exp_ratios": Text("2,3,4,4"), "window_size": Text("8")})
    assert emo == {"exp_ratios": (2.0, 3.0, 4.0, 4.0), "window_size": 8}
    assert isinstance(emo["exp_ratios"][0], float)
    vivit = typed_options(get_registry().model("vivit_fe_tiny"), {"adapter": Text("true"), "mimetic_init": False})
    assert vivit == {"adapter": True, "mimetic_init": False}
    brackets = typed_options(entry, {"layers": Text("[2,2,3,2]"), "planes": Text(" (8, 16, 32, 64) ")})
    assert brackets == {"layers": (2, 2, 3, 2), "planes": (8, 16, 32, 64)}  # as a Python or JSON list reads


@pytest.mark.parametrize(("options", "says"), [
    ({"num_frame": Text("8")}, ["has no option 'num_frame'", "available: num_classes, num_frames,", "did you mean 'num_frames'"]),
    ({"num_frames": Text("eight")}, ["option num_frames must be a positive integer, not 'eight'"]),
    ({"num_frames": Text("0")}, ["option num_frames must be a positive integer, not '0'"]),
    ({"num_frames": "8"}, ["must be a positive integer, not '8'"]),  # Python values are not text: no guessing
    ({"num_frames": True}, ["must be a positive integer, not 'True'"]),
    ({"layers": Text("3,x,6,3")}, ["option layers must be a positive integer, not 'x'"]),
    ({"layers": Text("[1,2")}, [("option layers must be a positive integer, not '[1', in '[1,2'; write comma-separated "
                                 "values like 1,1,1,1")]),  # it said "the registered value is 1", of a tuple
    ({"layers": Text("3,4,6")}, ["cannot be built with layers=3,4,6", "take 4 values each", "layers=3,4,6,3"]),
])
def test_bad_options_are_refused_in_one_line(tmp_path, options, says):
    with pytest.raises(BadInput) as err:
        plan("squeezetime_tiny", "eager", out_dir=tmp_path / "r", model_options=options)
    text = str(err.value)
    assert "\n" not in text and all(s in text for s in says), text
    assert not (tmp_path / "r").exists()


def test_cli_refuses_an_unknown_option_with_the_alternatives(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgest", "compile", "--model", "squeezetime_tiny", "--target", "eager",
                           "--model-option", "num_frame=4", "--out", "run"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("edgest: error: model 'squeezetime_tiny' has no option 'num_frame'; available:"), proc.stderr
    assert "did you mean 'num_frames'" in lines[-1] and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_option_items_are_scoped_to_models():
    reg = get_registry()
    models = {n: reg.model(n) for n in ("squeezetime_tiny", "lmuformer_tiny")}
    got = parse_items(["num_frames=4", "lmuformer_tiny:dim=16", "num_classes=5"], models)
    assert got == {"squeezetime_tiny": {"num_frames": "4", "num_classes": "5"}, "lmuformer_tiny": {"dim": "16", "num_classes": "5"}}
    for items, says in ((["nope=1"], "no model among squeezetime_tiny, lmuformer_tiny has an option 'nope'"),
                        (["vivit:depth=1"], "names model 'vivit', which is not being compiled"),
                        (["num_frames"], "malformed --model-option 'num_frames'; write KEY=VALUE")):
        with pytest.raises(BadInput, match=says):
            parse_items(items, models)


def test_model_options_apply_to_registered_models_only(tmp_path):
    with pytest.raises(BadInput, match="apply to registered models"):
        plan(torch.nn.Linear(4, 2), "eager", input_shape=(1, 4), out_dir=tmp_path / "r", model_options={"x": 1})


def test_shape_options_must_name_config_keys_and_layout_letters():
    spec = ModelSpec("m", "f", InputSpec((1, 3, 8, 8), "float32", "B,C,H,W"), 2, {"image_size": 8})
    assert ModelEntry(spec, "x:y", {"image_size": "H,W"}).input_shape_for({"image_size": 16}) == (1, 3, 16, 16)
    for bad in ({"size": "H,W"}, {"image_size": "T"}):
        with pytest.raises(PluginError, match="shape_options"):
            ModelEntry(spec, "x:y", bad)


# --- --input-shape rebuilds the model --------------------------------------------------------------

def test_input_shape_rebuilds_squeezetime_tiny_for_its_frames(tmp_path):
    p = plan("squeezetime_tiny", "eager", input_shape="1x3x4x64x64", out_dir=tmp_path / "r")
    assert p.spec.config["num_frames"] == 4 and p.spec == plan(
        "squeezetime_tiny", "eager", out_dir=tmp_path / "r", model_options={"num_frames": 4}).spec
    model = p.build_module()
    assert model.stem[0].in_channels == 12  # 3 channels x 4 frames squeezed into the stem
    with torch.no_grad():
        assert model(torch.zeros(p.spec.input.shape)).shape == (1, 10)
    # the batch is not an option: the registered config stays, only the shape changes
    assert plan("squeezetime_tiny", "eager", input_shape="2x3x8x64x64", out_dir=tmp_path / "r").spec.config == \
        get_registry().model("squeezetime_tiny").spec.config


def test_input_shape_rebuilds_vivit_and_refuses_what_it_cannot_build(tmp_path):
    p = plan("vivit_fe_tiny", "eager", input_shape=(1, 3, 4, 32, 32), out_dir=tmp_path / "r")
    assert (p.spec.config["num_frames"], p.spec.config["image_size"]) == (4, 32)
    model = p.build_module()
    assert model.spatial.pos_embed.shape[1] == 1 + (32 // 8) ** 2 and model.temporal.pos_embed.shape[1] == 1 + 4 // 2
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 4, 32, 32)).shape == (1, 10)
    with pytest.raises(BadInput) as err:
        plan("vivit_fe_tiny", "eager", input_shape=(1, 3, 7, 64, 64), out_dir=tmp_path / "r")
    assert str(err.value).startswith("model 'vivit_fe_tiny' cannot be built with num_frames=7 (from input shape 1x3x7x64x64)")
    assert "give num_frames a multiple of 2" in str(err.value)


def test_input_shape_and_option_must_agree(tmp_path):
    with pytest.raises(BadInput, match="input shape 1x3x4x64x64 means num_frames=4, but --model-option gives num_frames=8"):
        plan("squeezetime_tiny", "eager", input_shape="1x3x4x64x64", out_dir=tmp_path / "r", model_options={"num_frames": 8})


def test_160_input_sets_image_size(tmp_path):
    p = plan("emov2_20m", "eager", input_shape="1x3x160x160", out_dir=tmp_path / "r")
    assert p.spec.config["image_size"] == 160
    at_224 = model_stats(get_registry().model("emov2_20m"))
    at_160 = model_stats(p.model, p.spec)
    # the same network (image_size only sizes the input), fewer MACs (attention maps pad up to the window)
    assert at_160["params"] == at_224["params"] and at_224["macs"] * 0.5 < at_160["macs"] < at_224["macs"]


# --- what the report and the listing say -----------------------------------------------------------

def test_report_records_params_and_macs_of_the_compiled_variant(tmp_path):
    report = edgest.compile("squeezetime_tiny", "eager", out_dir=tmp_path / "r", latency=None, samples=1,
                            model_options={"num_frames": 4, "num_classes": 7})
    entry = get_registry().model("squeezetime_tiny")
    built = entry.build({**entry.spec.config, "num_frames": 4, "num_classes": 7})
    stats = json.loads((tmp_path / "r" / "report.json").read_text())["model_stats"]
    assert stats["params"] == count_params(built) != model_stats(entry)["params"]
    assert stats["macs"] == model_stats(entry, report.model)["macs"] > 0
    assert report.model.num_classes == 7 and report.model.input.shape == (1, 3, 4, 64, 64)
    assert Report.from_dict(report.to_dict()).model_stats == stats
    old = {k: v for k, v in report.to_dict().items() if k != "model_stats"}
    assert Report.from_dict(old).model_stats == {}  # a report written before the field reads as not counted


def test_list_models_shows_the_variant_an_option_makes():
    from edgest.inventory import inventory

    rows = inventory(["models"], "squeezetime", ["num_frames=8"])["models"]
    assert [r["name"] for r in rows] == ["squeezetime"]
    assert rows[0]["params"] == 29_668_288 and rows[0]["input"] == "1x3x8x224x224"
    assert "num_frames=8" in rows[0]["options"] and "layers=3,4,6,3" in rows[0]["options"]
    scoped = inventory(["models"], None, ["squeezetime_tiny:num_classes=600"])["models"]
    assert [(r["name"], r["options"]) for r in scoped] == [("squeezetime_tiny", "num_classes=600")]
    with pytest.raises(BadInput, match="has no option 'frames'"):
        inventory(["models"], "squeezetime", ["frames=8"])


def test_bench_puts_model_options_into_cells_and_cache_keys(tmp_path, monkeypatch):
    from edgest import bench

    calls = []
    monkeypatch.setattr(bench, "_compile_cell", lambda cell, key, *a, **kw: calls.append((key, kw)) or (None, "stub"))
    lat = edgest.LatencyConfig(0, 1, 0.0)
    keys = {}
    for label, opts in (("plain", None), ("t4", {"squeezetime_tiny": {"num_frames": Text("4")}})):
        doc = bench.run_bench(["squeezetime_tiny"], ["eager"], ["fp32"], tmp_path / label, latency=lat, model_options=opts)
        keys[label] = doc["cells"][0]["key"]
        assert doc["settings"]["model_options"] == ({"squeezetime_tiny": {"num_frames": 4}} if opts else {})
    assert keys["plain"] != keys["t4"]
    assert [kw["model_options"] for _, kw in calls] == [None, {"num_frames": 4}]
    with pytest.raises(BadInput, match="has no option 'frames'"):
        bench.run_bench(["squeezetime_tiny"], ["eager"], ["fp32"], tmp_path / "bad", latency=lat,
                        model_options={"squeezetime_tiny": {"frames": Text("4")}})
    assert not (tmp_path / "bad").exists()


def test_options_whose_weights_cannot_fit_are_refused_before_building(tmp_path) -> None:
    # the outside round: num_frames=1e9 passed the checks, then the build asked the allocator for 4.8 TB (a traceback)
    from edgest.errors import BadInput
    from edgest.plan import plan

    with pytest.raises(BadInput, match=r"num_frames=1000000000 has ~[\d.]+ GiB of weights, more than the .* of memory "
                                       r"available; give smaller values for num_frames"):
        plan("squeezetime_tiny", "eager", model_options={"num_frames": 1_000_000_000}, out_dir=tmp_path / "run")
