"""``edgest report merge``: idempotent, refuses unusable figures and foreign reports with one line, and a
full disk or Ctrl-C while it writes leaves report.json / bench.json as they were."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from edgest import fsio
from edgest.bench import run_bench
from edgest.bundle.merge import merge_device_reports
from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput
from edgest.report.writers import read_json

FAST = LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)


def cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    from edgest.cli import main

    monkeypatch.setattr("edgest.interrupts.install", lambda: None)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(args)
    return int(exit_.value.code or 0), capsys.readouterr().err


@pytest.fixture(scope="module")
def eager_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-cell bench (squeezetime_tiny on eager); its cell is also an ordinary run folder."""
    out = tmp_path_factory.mktemp("bench") / "bench"
    run_bench(["squeezetime_tiny"], ["eager"], ["fp32"], out, latency=FAST, samples=1)
    return out


@pytest.fixture
def run(eager_bench: Path, tmp_path: Path) -> Path:
    cell = eager_bench / json.loads((eager_bench / "bench.json").read_text())["cells"][0]["run_dir"]
    run = Path(shutil.copytree(cell, tmp_path / "run"))
    (run / "cell.key").unlink()
    return run


def device_report(sha: str, name: str = "pixel-8", **changes: Any) -> dict[str, Any]:
    """A device report as run_on_device.py writes it, for the artifact ``sha``."""
    doc = {
        "kind": "edgest-device-report", "bundle_version": 1, "model": "squeezetime_tiny", "target": "eager", "precision": "fp32",
        "artifact_sha256": sha,
        "device": {"name": name, "os": "Android", "machine": "aarch64", "cpu": "", "python": "3.11", "runtime": "onnxruntime",
                   "runtime_version": "1.22.0"},
        "accuracy": {"max_abs": 1e-6, "mean_abs": 1e-7, "sqnr_db": 110.0, "cosine": 1.0, "top1_agreement": 1.0, "output_scale": 2.0,
                     "samples": 1, "status": "passed", "limits": {"min_sqnr_db": 40.0, "min_top1_agreement": 1.0}, "reason": ""},
        "latency": {"p50_ms": 4.2, "p90_ms": 4.9, "mean_ms": 4.4, "std_ms": 0.3, "min_ms": 4.0, "runs": 30, "warmup": 5,
                    "cold_load_ms": 120.0, "threads": 1, "sustained_p50_ms": [], "cooldown_s": 0},
        "created": "2026-01-01T00:00:00+0000",
    }
    for path, value in changes.items():  # "latency__p50_ms" → doc["latency"]["p50_ms"]
        *parents, key = path.split("__")
        node = doc
        for p in parents:
            node = node[p]
        node[key] = value
    return doc


def write(path: Path, doc: dict[str, Any] | str) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def sha_of(run: Path) -> str:
    return read_json(run / "report.json").artifact.sha256


def test_merging_the_same_report_twice_changes_nothing(run, tmp_path):
    first = write(tmp_path / "a.json", device_report(sha_of(run)))
    second = write(tmp_path / "b.json", device_report(sha_of(run), name="rpi-5"))
    host_checks = len(read_json(run / "report.json").checks)
    merge_device_reports(run, [first, second])
    once = {n: (run / n).read_bytes() for n in ("report.json", "report.md")}
    merged = read_json(run / "report.json")
    assert len(merged.checks) == host_checks + 4
    assert [c.host.get("name") for c in merged.checks[host_checks:]] == ["pixel-8", "pixel-8", "rpi-5", "rpi-5"]
    merge_device_reports(run, [first])
    merge_device_reports(run, [first, first])
    assert {n: (run / n).read_bytes() for n in ("report.json", "report.md")} == once
    newer = write(tmp_path / "c.json", device_report(sha_of(run), latency__p50_ms=3.1))  # a re-run on the same device replaces
    merge_device_reports(run, [newer])
    lat = [c for c in read_json(run / "report.json").checks if c.kind == "latency" and c.host.get("name") == "pixel-8"]
    assert [c.metrics["p50_ms"] for c in lat] == [3.1]


BAD_FIGURES = {
    "negative latency": ({"latency__p50_ms": -3.0}, "latency p50_ms is -3, negative"),
    "NaN latency": ('"p90_ms": NaN', "latency p90_ms is nan, not a finite number"),
    "Infinity sqnr": ('"sqnr_db": Infinity', "accuracy sqnr_db is inf, not a finite number"),
    "text latency": ({"latency__p50_ms": "fast"}, 'latency p50_ms is "fast", not a number'),
    "boolean figure": ({"accuracy__max_abs": True}, "accuracy max_abs is true, not a number"),
    "negative error": ({"accuracy__max_abs": -1e-3}, "accuracy max_abs is -0.001, negative"),
    "agreement over 1": ({"accuracy__top1_agreement": 1.5}, "accuracy top1_agreement is 1.5, outside 0..1"),
    "negative sustained": ({"latency__sustained_p50_ms": [4.0, -1.0]}, "latency sustained_p50_ms is -1, negative"),
    "no p50": ({"latency": {"p90_ms": 4.0}}, "latency has no p50_ms"),
    "no device name": ({"device": {"os": "x"}}, "names no device"),
    # the outside round's final pass: accepted before
    "negative zero p50": ({"latency__p50_ms": -0.0}, "latency p50_ms is -0.0, not a positive time"),
    "zero p90": ({"latency__p90_ms": 0}, "latency p90_ms is 0, not a positive time"),
    "1e308 ms": ({"latency__p50_ms": 1e308}, "latency p50_ms is 1e+308, outside 0..3.6e+06"),
    "1e400 in the device": ('"runtime_version": 1e400', "device runtime_version is inf, not a finite number"),
    "huge device name": ({"device__name": "x" * 5000}, "has a device name of 5,000 characters (at most 500)"),
    "no figures": ({"accuracy": {"status": "passed", "limits": {}, "reason": ""}}, "accuracy has no sqnr_db"),
    "a list as the device os": ({"device__os": ["Android"]}, 'has a device os that is ["Android"], not text or a number'),
}


@pytest.mark.parametrize("case", sorted(BAD_FIGURES))
def test_unusable_figures_are_refused_with_one_line(run, tmp_path, capsys, monkeypatch, case):
    change, words = BAD_FIGURES[case]
    if isinstance(change, str):  # a JSON token Python's json cannot produce with allow_nan=False
        key, _, token = change.partition(": ")
        text = json.dumps(device_report(sha_of(run)), indent=1).replace(f'{key}: 4.9', change).replace(f'{key}: 110.0', change)
        text = text.replace(f'{key}: "1.22.0"', change)
        assert token in text
        path = write(tmp_path / "device-report.json", text)
    else:
        path = write(tmp_path / "device-report.json", device_report(sha_of(run), **change))
    before = (run / "report.json").read_bytes()
    code, err = cli(["report", "merge", str(run), str(path)], capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("edgest: error: device report"), err
    assert words in lines[0] and "Traceback" not in err
    assert (run / "report.json").read_bytes() == before


def test_a_report_of_another_artifact_is_refused(run, tmp_path, capsys, monkeypatch):
    path = write(tmp_path / "d.json", device_report("0" * 64))
    before = (run / "report.json").read_bytes()
    code, err = cli(["report", "merge", str(run), str(path)], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "is for another artifact" in err
    assert (run / "report.json").read_bytes() == before


@pytest.mark.parametrize("fault", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()], ids=["ENOSPC", "Ctrl-C"])
@pytest.mark.parametrize("call", ["write", "fsync"])
def test_a_fault_while_merging_leaves_the_reports_intact(run, tmp_path, monkeypatch, fault, call):
    path = write(tmp_path / "d.json", device_report(sha_of(run)))
    before = {n: (run / n).read_bytes() for n in ("report.json", "report.md")}

    def boom(*_: Any) -> None:
        raise fault

    if call == "write":  # the bytes themselves: the disk fills (or Ctrl-C comes) part-way through a file
        real_temp = fsio._write_temp

        def half_written(path: Path, writer: Any) -> Path:
            return real_temp(path, lambda fh: (fh.write(b'{"half'), fh.flush(), boom()))

        monkeypatch.setattr(fsio, "_write_temp", half_written)
    else:
        monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises((BadInput, KeyboardInterrupt)) as info:
        merge_device_reports(run, [path])
    if isinstance(fault, OSError):
        assert info.type is BadInput and "no space left writing" in str(info.value) and "free some space" in str(info.value)
    assert {n: (run / n).read_bytes() for n in ("report.json", "report.md")} == before
    assert not [p.name for p in run.iterdir() if ".edgest-tmp-" in p.name]


def test_merging_into_a_bench_is_idempotent_and_checked(eager_bench, tmp_path):
    bench = Path(shutil.copytree(eager_bench, tmp_path / "bench"))
    sha = json.loads((bench / "bench.json").read_text())["cells"][0]["artifact"]["sha256"]
    path = write(tmp_path / "d.json", device_report(sha))
    merge_device_reports(bench, [path])
    once = {n: (bench / n).read_bytes() for n in ("bench.json", "report.md", "report.html")}
    merge_device_reports(bench, [path, path])
    assert {n: (bench / n).read_bytes() for n in ("bench.json", "report.md", "report.html")} == once
    doc = json.loads(once["bench.json"])
    assert [d["device"]["name"] for d in doc["device_results"]] == ["pixel-8"]
    bad = write(tmp_path / "bad.json", device_report(sha, latency__p50_ms=-1.0))
    with pytest.raises(BadInput, match="negative"):
        merge_device_reports(bench, [bad])
    (bench / "bench.json").write_text('{"kind": "edgest-bench", "cells": "oops"}')
    with pytest.raises(BadInput, match="is not an edgest bench document"):
        merge_device_reports(bench, [path])


def test_merging_into_a_bench_that_is_running_is_refused(eager_bench, tmp_path):
    from edgest.testing.processes import lock_held_elsewhere

    bench = Path(shutil.copytree(eager_bench, tmp_path / "bench"))
    sha = json.loads((bench / "bench.json").read_text())["cells"][0]["artifact"]["sha256"]
    path = write(tmp_path / "d.json", device_report(sha))
    before = (bench / "bench.json").read_bytes()
    with lock_held_elsewhere(bench), pytest.raises(BadInput, match="is being written by another edgest process right now"):
        merge_device_reports(bench, [path])  # as a bench in another process holds it: its bench.json would win
    assert (bench / "bench.json").read_bytes() == before
    assert merge_device_reports(bench, [path]) == ["merged squeezetime_tiny/eager from pixel-8"]


def test_damaged_reports_are_one_line_errors(run, tmp_path, capsys, monkeypatch):
    path = write(tmp_path / "d.json", device_report(sha_of(run)))
    for damaged in ("[1, 2]", '{"schema_version": "1.0", "status": "passed"}', '{"schema_version": "1.0", "model": 3}'):
        (run / "report.json").write_text(damaged)
        code, err = cli(["report", "merge", str(run), str(path)], capsys, monkeypatch)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert (run / "report.json").read_text() == damaged
    write(path, "[]")
    with pytest.raises(BadInput, match="is not an edgest device report"):
        merge_device_reports(run, [path])
    # an empty or cut file, or not a file at all: what is wrong and what to merge instead (it gave json's own words)
    for device, what in ((write(tmp_path / "empty.json", ""), "it is not valid JSON"), (tmp_path, "it cannot be read")):
        with pytest.raises(BadInput, match=f"^cannot read device report '{device}': {what} \\(.+\\); merge the "
                                           "device-report.json run_on_device.py wrote$"):
            merge_device_reports(run, [device])


def test_a_report_far_larger_than_any_device_report_is_not_read(run, tmp_path, capsys, monkeypatch):
    from edgest.bundle import merge

    monkeypatch.setattr(merge, "MAX_DEVICE_REPORT_BYTES", 2048)  # stands for 16 MB: the outside round sent a 60 MB name
    path = write(tmp_path / "device-report.json", device_report(sha_of(run), device__name="x" * 4000))
    code, err = cli(["report", "merge", str(run), str(path)], capsys, monkeypatch)
    assert code == 2 and "far larger than a device report" in err and len(err.strip().splitlines()) == 1, err


def test_a_folder_without_a_report_names_the_folder_to_merge_into(run, tmp_path):
    path = write(tmp_path / "d.json", device_report(sha_of(run)))
    bundle, user = tmp_path / "bundle", tmp_path / "user"
    bundle.mkdir()
    user.mkdir()
    (bundle / "manifest.json").write_text("{}")
    tail = ("merge the device report into the run folder (edgest compile --out) or bench folder (edgest bench --out) "
            "its bundle was made from")
    with pytest.raises(BadInput, match=r"^'.*bundle' is a device bundle, which keeps no report; " + re.escape(tail)):
        merge_device_reports(bundle, [path])
    with pytest.raises(BadInput, match=r"^'.*user' holds neither report.json nor bench.json; " + re.escape(tail)):
        merge_device_reports(user, [path])


def test_a_truncated_report_names_the_fix(run, tmp_path):
    path = write(tmp_path / "d.json", device_report(sha_of(run)))
    (run / "report.json").write_text((run / "report.json").read_text()[:300])
    with pytest.raises(BadInput, match=r"cannot read report '.*report.json': it is not valid JSON \(.*; truncated or "
                                       r"edited\?\); restore report.json from a copy or compile the run again$"):
        merge_device_reports(run, [path])
