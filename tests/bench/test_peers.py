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


def test_a_candidate_failing_on_the_trained_variant_is_not_faithful(tmp_path, monkeypatch):
    """--trained-weights: every candidate is also judged on the trained variant, as a compile with --weights judges.

    The "drifts" peer builds a faithful ONNX model from the random-init model and an unfaithful one from the
    trained variant (its weights scaled): it must lose its place on the full model's table, with the reason.
    """
    import torch

    peers = _load()
    from peers_lib import builders

    from edgest.plugins import get_registry

    entry = get_registry().model("squeezetime_tiny")
    torch.manual_seed(1)
    weights = tmp_path / "w"
    weights.mkdir()
    torch.save(entry.build(entry.spec.config).state_dict(), weights / "squeezetime_tiny.pt")

    def drifts(ctx, folder):
        module = ctx.module
        if "trained" in ctx.root.name:  # only where it is judged on the trained weights
            import copy

            module = copy.deepcopy(ctx.module)
            with torch.no_grad():
                for p in module.parameters():
                    p.mul_(1.3)
        torch.onnx.export(module, (torch.from_numpy(ctx.example),), str(folder / "model.onnx"), dynamo=True)
        return {"artifact": "model.onnx", "how": "test peer"}

    monkeypatch.setitem(builders.PEERS, "drifts", builders.Peer("drifts", "a peer that drifts", "fp32", "ort", drifts))
    doc = peers.main(["--models", "squeezetime_tiny", "--threads", "1", "--rounds", "1", "--samples", "2",
                      "--peers", "eager,drifts", "--edgest-targets", "none", "--trained-weights", str(weights),
                      "--cache", str(tmp_path / "cache")])
    model = doc["models"]["squeezetime_tiny"]
    verdicts = model["trained"]["verdicts"]
    assert model["trained"]["variant"] == "squeezetime_tiny"
    assert verdicts["eager"]["status"] == "passed" and verdicts["eager"]["task_top1_drop_pts"] == 0.0
    assert verdicts["eager"]["limits"] == {"min_sqnr_db": 40.0, "min_top1_agreement": 1.0}
    assert verdicts["drifts"]["status"] == "failed" and "SQNR" in verdicts["drifts"]["reason"]
    rows = {r["key"]: r for r in model["threads"]["1"]["rows"]}
    assert rows["eager"]["faithful"] is True and rows["drifts"]["sqnr_db"] > 40.0  # faithful at random init ...
    assert rows["drifts"]["faithful"] is False  # ... but not on the trained variant
    assert rows["drifts"]["broken"][-1].startswith("on trained squeezetime_tiny: SQNR")
    assert model["threads"]["1"]["summary"]["best_peer"] == "eager"
    assert "| a peer that drifts | failed |" in model["trained_markdown"]


def test_trained_weights_that_are_not_there_are_said_not_skipped_silently(tmp_path, capsys):
    peers = _load()
    with pytest.raises(SystemExit) as exc:
        peers.main(["--models", "squeezetime_tiny", "--trained-weights", str(tmp_path / "nowhere")])
    assert exc.value.code == 2
    assert f"--trained-weights {tmp_path / 'nowhere'}: no such folder" in capsys.readouterr().err
    (tmp_path / "w").mkdir()
    doc = peers.main(["--models", "squeezetime_tiny", "--threads", "1", "--rounds", "1", "--samples", "1",
                      "--peers", "eager", "--edgest-targets", "none", "--trained-weights", str(tmp_path / "w"),
                      "--cache", str(tmp_path / "cache")])
    assert doc["models"]["squeezetime_tiny"]["trained"] is None
    assert (f"squeezetime_tiny: not judged on trained weights: no {tmp_path / 'w' / 'squeezetime_tiny.pt'} (make it "
            f"with edgest train --model squeezetime_tiny --out") in capsys.readouterr().out
