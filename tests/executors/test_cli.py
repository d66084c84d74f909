"""The executor options of `edgest bench` and `edgest device serve`: one-line refusals, and the ray start line."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import pytest

from edgest.cli import main


@dataclass
class _Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def _edgest(capsys):
    """``edgest ARGS`` in this process (the errors come before any work: no need for a fresh interpreter)."""

    def run(*args: str) -> _Done:
        with pytest.raises(SystemExit) as end:
            main(list(args))
        out = capsys.readouterr()
        return _Done(end.value.code, out.out, out.err)

    return run


def test_device_serve_prints_the_ray_start_line_with_targets_and_labels(_edgest):
    proc = _edgest("device", "serve", "--labels", "jetson-orin,pixel-8", "--address", "head:6379", "--print")
    assert proc.returncode == 0, proc.stderr
    words = shlex.split(proc.stdout)
    assert words[1:3] == ["start", "--address=head:6379"] and words[3].startswith("--resources=")
    resources = json.loads(words[3].split("=", 1)[1])
    assert resources["device:jetson-orin"] == resources["device:pixel-8"] == 1.0
    assert resources["edgest-target:eager"] == 1.0  # every installed target is advertised


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "onnx=lab"], ("edgest: error: --device (onnx=lab) places cells on device hosts of a Ray cluster; "
                                "add --executor ray, or drop --device")),
    (["--jobs", "2"], "edgest: error: --jobs (2) sets the pool's processes; add --executor pool, or drop --jobs"),
    (["--executor", "ray", "--device", "tvm=lab"], ("edgest: error: --device 'tvm=lab' names target 'tvm', which is not "
                                                    "in the bench (onnx)")),
    (["--device", "a", "--device", "b", "--executor", "ray"], "edgest: error: --device gives every target two devices"),
])
def test_bench_refuses_executor_options_that_do_not_fit_in_one_line(_edgest, tmp_path, args, message):
    proc = _edgest("bench", "--models", "lmuformer_tiny", "--targets", "onnx", "--out", str(tmp_path / "b"), *args)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(message), proc.stderr
    assert not (tmp_path / "b").exists()
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("store", "why"), [("/proc/edgest-store", "No such file or directory"),
                                           ("missing", "No such file or directory"),  # an unmounted store: not made
                                           ("file", "Not a directory")])
def test_bench_refuses_a_shared_store_it_cannot_write_before_any_cell(_edgest, tmp_path, monkeypatch, store, why):
    (tmp_path / "file").write_text("mine")
    store = store if store.startswith("/") else str(tmp_path / store)
    monkeypatch.setenv("EDGEST_SHARED_STORE", store)  # was read only for a file over 64 MiB, after its cell compiled
    proc = _edgest("bench", "--models", "lmuformer_tiny", "--targets", "onnx", "--out", str(tmp_path / "b"),
                   "--executor", "ray")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"edgest: error: EDGEST_SHARED_STORE={store!r} is not a folder edgest can write "
                                   f"({why}); point it at a folder every node mounts at the same path, or unset it "
                                   "(files then travel through Ray)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"] and (tmp_path / "file").read_text() == "mine"


def test_device_serve_refuses_a_label_ray_cannot_carry(_edgest):
    proc = _edgest("device", "serve", "--labels", "a:b", "--print")
    assert proc.returncode == 2 and "device label 'a:b' has a space, ':' or '='" in proc.stderr


@pytest.mark.parametrize(("address", "message"), [
    ("head:xx", "--address 'head:xx': a node joins its head by host:port, e.g. 10.0.0.5:6379"),  # ray's traceback
    ("auto", "--address 'auto': a node joins its head by host:port"),
    ("127.0.0.1:1", "cannot reach a Ray cluster at '127.0.0.1:1' (Connection refused); start the head there first"),
])
def test_device_serve_refuses_an_address_it_cannot_join_before_ray_starts(_edgest, address, message):
    args = ("device", "serve", "--address", address, *(("--print",) if address != "127.0.0.1:1" else ()))
    proc = _edgest(*args)
    assert proc.returncode == 2 and proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"edgest: error: {message}"), proc.stderr
