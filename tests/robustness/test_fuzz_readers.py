"""Property tests over the files edgest reads back: only an EdgestError (one line) may come out.

report.json (:func:`edgest.report.writers.read_json`), device reports merged into a run
(:func:`edgest.bundle.merge_device_reports`: the folder is left as it was, or holds a report
edgest reads again), bench cache entries (a damaged entry is a cache miss, never an error), and
checkpoints (:func:`edgest.model.load_weights`): random bytes, random JSON (NaN and huge numbers
included), and valid documents with a few fields deleted or replaced.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edgest.errors import EdgestError
from edgest.records import Artifact, CheckResult, InputSpec, ModelSpec, Report

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=10)
ARTIFACT = b"not really a program, but these exact bytes"
SHA = hashlib.sha256(ARTIFACT).hexdigest()


def _report() -> dict[str, Any]:
    report = Report(
        status="passed", model=ModelSpec("net", "user", InputSpec((1, 4)), 3), target="eager",
        artifact=Artifact("net", "eager", "model.pt2", "pt2", len(ARTIFACT), SHA),
        checks=(CheckResult("accuracy", "passed", {"sqnr_db": 80.0, "max_abs": 1e-6, "top1_agreement": 1.0, "samples": 8},
                            {"min_sqnr_db": 40.0, "min_top1_agreement": 1.0}, {"where": "host"}),
                CheckResult("latency", "passed", {"p50_ms": 1.5, "p90_ms": 2.0, "threads": 1}, {"warmup": 5}, {"where": "host"})),
        created="2025-01-01T00:00:00+00:00",
    )
    return json.loads(json.dumps(report.to_dict()))


def _device() -> dict[str, Any]:
    return {"kind": "edgest-device-report", "bundle_version": 1, "model": "net", "target": "eager", "precision": "fp32",
            "artifact_sha256": SHA, "device": {"name": "phone", "os": "android"},
            "accuracy": {"sqnr_db": 70.0, "max_abs": 1e-5, "mean_abs": 1e-6, "cosine": 1.0, "top1_agreement": 1.0,
                         "output_scale": 3.0, "samples": 8, "status": "passed", "limits": {"min_sqnr_db": 40.0}, "reason": ""},
            "latency": {"p50_ms": 3.0, "p90_ms": 4.0, "runs": 30}, "created": "2025-01-01T00:00:00+0000"}


def _slots(obj: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON document, depth first."""
    out = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        out.append((obj, key))
        out += _slots(value)
    return out


@st.composite
def damaged(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """``base`` with 1-3 fields deleted or replaced by random JSON; or random JSON; or random bytes."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "json":
        return draw(JSON)
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(doc)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if isinstance(container, dict) and draw(st.booleans()):
            del container[key]
        else:
            container[key] = draw(JSON)
    return doc


def _write(path: Path, doc: Any) -> None:
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    else:
        path.write_text(json.dumps(doc))  # NaN and Infinity are written as JSON's non-standard literals


def _run_folder(root: Path) -> Path:
    folder = Path(tempfile.mkdtemp(dir=root))
    (folder / "model.pt2").write_bytes(ARTIFACT)
    (folder / "report.json").write_text(json.dumps(_report()))
    return folder


@FUZZ
@given(doc=damaged(_report()))
@example(doc={**_report(), "artifact": []})  # found by this test: an empty, not a missing, artifact
@example(doc={**_report(), "artifact": {}})
def test_fuzz_read_json(tmp_path: Path, doc: Any) -> None:
    from edgest.report.writers import read_json

    _write(tmp_path / "report.json", doc)
    try:
        report = read_json(tmp_path / "report.json")
    except EdgestError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(report, Report)


@FUZZ
@given(doc=damaged(_device()))
@example(doc={**_device(), "latency": {"p50_ms": [3.0], "p90_ms": 4.0}})  # found by this test: a list where a figure goes
def test_fuzz_merge_device_report(tmp_path: Path, doc: Any) -> None:
    from edgest.bundle import merge_device_reports
    from edgest.report.writers import read_json

    folder = _run_folder(tmp_path)
    before = (folder / "report.json").read_bytes()
    _write(folder.parent / f"{folder.name}-device.json", doc)
    try:
        merge_device_reports(folder, [folder.parent / f"{folder.name}-device.json"])
    except EdgestError as exc:
        assert "\n" not in str(exc)
        assert (folder / "report.json").read_bytes() == before  # refused: nothing changed
        return
    merged = read_json(folder / "report.json")  # accepted: what was written reads back
    assert any(c.host.get("where") == "device" for c in merged.checks)


@FUZZ
@given(doc=damaged(_report()), key=st.one_of(st.just("k" * 16), st.text(max_size=20)), marker=st.booleans())
def test_fuzz_bench_cache_entry_is_a_hit_or_a_miss(tmp_path: Path, doc: Any, key: str, marker: bool) -> None:
    from edgest.bench import _cached_report
    from edgest.outdir import write_marker

    folder = _run_folder(tmp_path)
    _write(folder / "report.json", doc)
    (folder / "cell.key").write_text(key)
    if marker:
        write_marker(folder, "run")
    report = _cached_report(folder, "k" * 16)  # raises nothing: a damaged entry is recompiled
    assert report is None or (isinstance(report, Report) and key == "k" * 16 and marker)


# --- checkpoints ----------------------------------------------------------------------------------

def _net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


TENSORS = st.builds(
    lambda shape, dtype, fill: torch.full(shape, fill).to(dtype),
    st.lists(st.integers(0, 3), max_size=3).map(tuple),
    st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool, torch.float64]),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
)
VALUES = st.recursive(TENSORS | SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                      max_leaves=8)
KEYS = st.sampled_from(["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked", "state_dict"]) | st.text(max_size=6)


@st.composite
def checkpoints(draw: st.DrawFn) -> Any:
    """The model's own state with a few entries replaced or removed, or a random structure."""
    if draw(st.booleans()):
        state: dict[Any, Any] = dict(_net().state_dict())
        for _ in range(draw(st.integers(1, 3))):
            key = draw(KEYS)
            if key in state and draw(st.booleans()):
                del state[key]
            else:
                state[key] = draw(VALUES)
        return {"state_dict": state} if draw(st.booleans()) else state
    return draw(st.one_of(VALUES, st.dictionaries(st.one_of(KEYS, st.integers()), VALUES, max_size=4)))


@settings(FUZZ, max_examples=80)
@given(obj=st.one_of(checkpoints(), st.binary(max_size=80)))
def test_fuzz_load_weights(tmp_path: Path, obj: Any) -> None:
    from edgest.model import load_weights

    path = tmp_path / "w.pt"
    if isinstance(obj, bytes):
        path.write_bytes(obj)
    else:
        buf = io.BytesIO()
        torch.save(obj, buf)
        path.write_bytes(buf.getvalue())
    model = _net()
    try:
        load_weights(model, path)
    except EdgestError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())


def test_truncated_checkpoint_is_one_line(tmp_path: Path) -> None:
    from edgest.model import load_weights

    buf = io.BytesIO()
    torch.save(_net().state_dict(), buf)
    for cut in (1, 10, len(buf.getvalue()) // 2, len(buf.getvalue()) - 1):
        (tmp_path / "w.pt").write_bytes(buf.getvalue()[:cut])
        with pytest.raises(EdgestError, match="cannot read weights"):
            load_weights(_net(), tmp_path / "w.pt")
