"""bench/peers.py on squeezetime_tiny: eager, ONNX Runtime fp32 and OpenVINO f32 timed in turns, a raising peer listed."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "peers.py"

pytest.importorskip("onnxruntime", reason="the ONNX Runtime peer needs onnxruntime")
pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
pytest.importorskip("openvino", reason="the OpenVINO peer needs openvino")


def _load():
    spec = importlib.util.spec_from_file_location("peers_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peers_rows_times_sqnr_and_errors(tmp_path, monkeypatch):
    peers = _load()
    from peers_lib import builders

    def boom(ctx, folder):
        raise RuntimeError("this toolchain cannot lower op 'aten.frobnicate'\nsecond line")

    monkeypatch.setitem(builders.PEERS, "boom", builders.Peer("boom", "a peer that raises", "fp32", "ort", boom))
    out = tmp_path / "peers.json"
    doc = peers.main(["--models", "squeezetime_tiny", "--threads", "1", "--rounds", "1", "--samples", "2",
                      "--peers", "eager,ort-fp32,ov-f32,boom", "--edgest-targets", "none",
                      "--cache", str(tmp_path / "cache"), "--json", str(out)])
    assert json.loads(out.read_text())["models"].keys() == {"squeezetime_tiny"}
    table = doc["models"]["squeezetime_tiny"]["threads"]["1"]
    rows = {r["key"]: r for r in table["rows"]}
    assert set(rows) == {"eager", "ort-fp32", "ov-f32", "boom"}
    for key in ("eager", "ort-fp32", "ov-f32"):
        assert math.isfinite(rows[key]["p50_ms"]) and rows[key]["p50_ms"] > 0
        assert math.isfinite(rows[key]["sqnr_db"]) and rows[key]["faithful"] is True
    assert rows["eager"]["sqnr_db"] == 200.0  # eager against itself: bit-identical
    assert rows["ov-f32"]["executes"] == "f32"
    assert rows["boom"]["error"] == "RuntimeError: this toolchain cannot lower op 'aten.frobnicate'"
    assert rows["boom"]["faithful"] is None and "p50_ms" not in rows["boom"]
    best = table["summary"]["best_peer"]
    assert rows[best]["ratio"] == 1.0 and all(rows[k]["ratio"] >= 1.0 for k in ("eager", "ort-fp32", "ov-f32"))
    md = table["markdown"]
    assert "| a peer that raises | peer | - | - | - | - | - | error: RuntimeError: this toolchain cannot lower op" in md
    assert md.count("| peer |") == 4 and "torch eager" in md


@pytest.mark.slow
def test_olive_peer_builds_a_faithful_qdq_int8_model(tmp_path):
    """Olive's workflow (conversion, peephole, static QDQ per-channel) runs from Python and its model is timed."""
    pytest.importorskip("olive", reason="the Olive peer needs olive-ai (make setup installs it)")
    peers = _load()
    doc = peers.main(["--models", "squeezetime_tiny", "--threads", "1", "--rounds", "1", "--samples", "2",
                      "--peers", "olive-int8", "--edgest-targets", "none", "--cache", str(tmp_path / "cache")])
    row = doc["models"]["squeezetime_tiny"]["threads"]["1"]["rows"][0]
    assert row["key"] == "olive-int8" and "error" not in row, row.get("error")
    assert row["faithful"] is True and row["p50_ms"] > 0
    assert row["executes"].startswith("int8")
    built = next((tmp_path / "cache").rglob("olive-int8/build.json"))
    assert "OnnxStaticQuantization(QDQ, per_channel=True)" in json.loads(built.read_text())["how"]
    assert not list(built.parent.rglob("olive-cache"))  # Olive's cache is not kept next to the model
