"""bench/passes_matrix.py: rows become one summary line per model and target (int8 and rewrite next to fp32)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "passes_matrix.py"


def _load():
    spec = importlib.util.spec_from_file_location("passes_matrix", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_pairs_int8_and_rewrite_with_fp32():
    pm = _load()
    assert pm.has_attention("vivit_fa_tiny") and pm.has_attention("emov2_tiny_video") and not pm.has_attention("squeezetime")
    rows = [
        {"model": "vivit_fa_tiny", "target": "onnx", "precision": "fp32", "passes": "-", "status": "passed", "p50_ms": 2.0,
         "size_bytes": 4_000_000},
        {"model": "vivit_fa_tiny", "target": "onnx", "precision": "int8", "passes": "-", "status": "passed", "p50_ms": 1.0,
         "size_bytes": 1_000_000, "sqnr_db": 30.0, "top1_agreement": 1.0, "task_top1_drop_pts": 0.0},
        {"model": "vivit_fa_tiny", "target": "onnx", "precision": "fp32", "passes": "attention-to-conv", "status": "passed",
         "p50_ms": 1.5, "size_bytes": 4_000_000},
        {"model": "vivit_fa_tiny", "target": "tvm", "precision": "fp32", "passes": "-", "status": "passed", "p50_ms": 3.0,
         "size_bytes": 5_000_000},
        {"model": "vivit_fa_tiny", "target": "tvm", "precision": "int8", "passes": "-", "status": "error",
         "error": "target 'tvm' does not support precision 'int8'"},
    ]
    onnx, tvm = pm.summarise(rows)
    assert (onnx["fp32_p50_ms"], onnx["int8_p50_ms"], onnx["a2c_p50_ms"]) == (2.0, 1.0, 1.5)
    assert (onnx["fp32_mb"], onnx["int8_mb"], onnx["int8_sqnr_db"]) == (4.0, 1.0, 30.0)
    assert tvm["int8_p50_ms"] is None and tvm["int8_status"] == "error" and tvm["a2c_status"] == "-"
    md = pm.markdown([onnx, tvm]).splitlines()
    assert md[2] == "| vivit_fa_tiny | onnx | 2.00 | 1.00 | 4.00 | 1.00 | 30.0 | 100 | 0.0 | 1.50 |"
    assert md[3] == "| vivit_fa_tiny | tvm | 3.00 | n/a | 5.00 | - | - | - | - | - |"


def test_bench_weights_keep_trained_files_and_stand_in_only_for_models_that_ignore_their_input(tmp_path):
    import torch

    from edgest.plugins import get_registry
    from edgest.testing.weights import bench_weights

    trained = tmp_path / "mine.pt"
    trained.write_bytes(b"not read")
    got = bench_weights(["squeezetime_tiny", "emov2_tiny_video", "vivit_fa_tiny"], {"squeezetime_tiny": str(trained)},
                        tmp_path / "w")
    assert got["squeezetime_tiny"] == (trained, True)
    assert got["vivit_fa_tiny"] == (None, False)  # responds to its input at init: keeps it
    path, is_trained = got["emov2_tiny_video"]
    assert not is_trained and path.parent == tmp_path / "w"
    assert [got[m].label for m in ("squeezetime_tiny", "vivit_fa_tiny", "emov2_tiny_video")] == ["trained", "init", "stand-in"]
    entry = get_registry().model("emov2_tiny_video")
    model = entry.build().eval()
    model.load_state_dict(torch.load(path))
    assert all(float(p.min()) == 1.0 for n, p in model.named_parameters() if n.endswith("gamma"))
    x = torch.randn(2, *entry.spec.input.shape[1:])
    with torch.no_grad():
        out = model(x)
    assert float((out[0] - out[1]).abs().max()) > 1e-3  # the stand-in responds to its input



def test_retime_loads_each_artifact_with_its_target_and_times_them_in_turns(tmp_path):
    import edgest
    from edgest.checks.retime import Compiled, retime

    report = edgest.compile("lmuformer_tiny", "eager", out_dir=tmp_path / "run", samples=1, latency=None)
    artifact = Compiled("eager", tmp_path / "run" / report.artifact.path, tuple(report.model.input.shape))
    stats = retime({"a": artifact, "b": artifact}, rounds=2)
    assert set(stats) == {"a", "b"} and all(s["rounds"] == 2 and s["p50_ms"] > 0 for s in stats.values())
