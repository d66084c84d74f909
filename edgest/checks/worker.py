"""Child-process side of :mod:`edgest.checks.isolated` (``python -m edgest.checks.worker DIR``).

Writes ``outputs.npz`` as soon as the accuracy runs are done and ``result.json`` after each
stage, so whatever finished before a crash is still reported.

Started as ``python -m edgest.checks.worker DIR [LIFELINE_FD PARENT_PID]``: with the last two it
dies with its parent, and takes what its runtime started along (:mod:`edgest.checks.lifeline`),
set up before numpy or the runtime is imported.

``python -m edgest.checks.worker --ready TARGET OPTIONS LIFELINE_FD PARENT_PID`` starts ahead of its request
(:mod:`edgest.checks.ready`): it imports the target's runtime, reads one request folder from stdin and runs it
as ``main`` would (nothing on stdin: it exits).

``python -m edgest.checks.worker --serve DIR REPLY_FD LIFELINE_FD PARENT_PID`` serves several requests
in one process (:class:`edgest.checks.session.CheckSession`): each line on stdin names a subfolder of
DIR holding a request, and ``NAME EXIT_CODE`` goes back on REPLY_FD when it is done (not on stdout,
where a runtime may print).

Two optional runner attributes: ``label`` (what actually ran, e.g. a reference interpreter
instead of the device runtime; the report shows it) and ``timing_unavailable`` (a reason not
to time this runner: its latency would be misleading; the latency check is then not run).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from edgest.errors import EdgestError, TargetUnavailable


def _write(work: Path, result: dict[str, Any]) -> None:
    tmp = work / "result.json.tmp"
    tmp.write_text(json.dumps(result))
    tmp.replace(work / "result.json")


def _stream(work: Path, req: dict[str, Any], runner: Any, result: dict[str, Any], no_timing: bool) -> None:
    from edgest.streaming.worker import run as run_stream

    result["streaming"] = run_stream(runner, work, {**req["streaming"], "latency": None if no_timing else req["latency"]})
    _write(work, result)


def _shapes(arrays: list[Any]) -> list[tuple[Any, ...]]:
    return [(tuple(getattr(a, "shape", ())), str(getattr(a, "dtype", type(a).__name__))) for a in arrays]


def _accuracy_runs(runner: Any, sample: Any, count: int, x: list[Any], first: Any) -> tuple[list[Any], int]:
    """The outputs of every input (``x``, input 0, run already: ``first``), and how many of the runs had ``x``'s
    shapes: they warmed the artifact up as the latency check's warm-up runs would (each input read once)."""
    shapes, outs, warm = _shapes(x), [first], 1
    for i in range(1, count):
        xs = sample(i)
        outs.append(runner.run(xs))
        warm += _shapes(xs) == shapes
    return outs, warm


def _import_runtime(target: Any) -> None:
    """Import the target's ``runtime_modules`` (None: its ``requires``) before the clock starts: cold load is
    artifact load + session set-up, and the rest of the toolchain (a converter) is not imported at all."""
    runtime = getattr(target, "runtime_modules", None)
    for module_name in getattr(target, "requires", ()) if runtime is None else runtime:
        importlib.import_module(module_name)


def main(work: Path) -> int:
    import numpy as np

    from edgest.checks.latency import LatencyConfig, measure
    from edgest.executors.timing import timing_turn

    req = json.loads((work / "request.json").read_text())
    from edgest.checks.isolated import load_class

    cls = load_class(req["target"])
    target = cls(**req["options"])
    data = np.load(work / "inputs.npz")  # read one input set at a time: a user's eval clips may not fit in memory
    arity = Counter(k.partition("_")[0] for k in data.files)

    def sample(i: int) -> list[Any]:
        return [data[f"s{i}_in{j}"] for j in range(arity[f"s{i}"])]

    result: dict[str, Any] = {"threads": req["threads"]}
    try:
        host_reason = getattr(cls, "host_unavailable_reason", lambda: None)()
        if host_reason:
            raise TargetUnavailable(host_reason)
        _import_runtime(target)
        t0 = time.perf_counter()
        runner = target.load(Path(req["artifact"]), threads=req["threads"])
        t1 = time.perf_counter()
        x = sample(0)  # read inside the first run's clock, as before; kept for the shapes and the latency check
        first = runner.run(x)
        t2 = time.perf_counter()
        result["load"] = {"cold_load_ms": (t1 - t0) * 1e3, "first_run_ms": (t2 - t1) * 1e3}
        result["threads"] = getattr(runner, "threads", req["threads"])
        result["label"] = getattr(runner, "label", "") or ""
        no_timing = getattr(runner, "timing_unavailable", None)
        if no_timing:
            result["timing_unavailable"] = str(no_timing)
        outs, warm = _accuracy_runs(runner, sample, req["samples"], x, first)
        np.savez(work / "outputs.npz", **{f"s{i}_out{j}": o for i, os_ in enumerate(outs) for j, o in enumerate(os_)})
        _write(work, result)
        if req["latency"] and not no_timing:
            with timing_turn():  # timings on this host take turns (edgest.executors.timing)
                result["latency"] = measure(lambda: runner.run(x), LatencyConfig(**req["latency"]), warm=warm)
            _write(work, result)
        if req.get("streaming"):  # whole sequences step by step, state fed back (edgest.streaming.worker)
            _stream(work, req, runner, result, bool(no_timing))
    except TargetUnavailable as exc:
        result["unavailable"] = str(exc)
        _write(work, result)
        return 0
    except EdgestError as exc:
        result["error"] = str(exc)
        _write(work, result)
        return 1
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the check's failure
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        result["error"] = f"runner failed: {type(exc).__name__}: {first_line}"
        _write(work, result)
        return 1
    return 0


def serve(work: Path, reply_fd: int) -> int:
    """Run the request in each subfolder of ``work`` that stdin names, in turn, replying ``NAME EXIT_CODE`` on
    ``reply_fd``; ends when stdin does."""
    import os

    for line in sys.stdin:
        name = line.strip()
        try:
            code = main(work / name)
        except Exception as exc:  # noqa: BLE001 - this request failed; the next one may not
            first_line = (str(exc).strip().splitlines() or [""])[0][:300]
            _write(work / name, {"error": f"check process failed: {type(exc).__name__}: {first_line}"})
            code = 1
        os.write(reply_fd, f"{name} {code}\n".encode())
    return 0


def ready(target_path: str, options: str) -> int:
    """Import what :func:`main` will need for ``target_path``'s target, then run the request folder stdin names."""
    import numpy  # noqa: F401 - imported now rather than after the request arrives

    from edgest.checks.isolated import TAKEN, load_class
    from edgest.checks.latency import measure  # noqa: F401 - as above
    from edgest.executors.timing import timing_turn  # noqa: F401 - as above

    try:
        cls = load_class(target_path)
        if not getattr(cls, "host_unavailable_reason", lambda: None)():
            _import_runtime(cls(**json.loads(options)))
    except Exception:  # noqa: BLE001, S110 - main meets the same fault with the request and reports it
        pass
    line = sys.stdin.readline().strip()
    if not line:
        return 0
    (Path(line) / TAKEN).touch()  # from here the outcome is this process's, whatever happens to it
    return main(Path(line))


if __name__ == "__main__":
    from edgest.checks.lifeline import hold

    if sys.argv[1] == "--ready":
        hold(int(sys.argv[4]), int(sys.argv[5]))
        sys.exit(ready(sys.argv[2], sys.argv[3]))
    if sys.argv[1] == "--serve":
        hold(int(sys.argv[4]), int(sys.argv[5]))
        sys.exit(serve(Path(sys.argv[2]), int(sys.argv[3])))
    if len(sys.argv) == 4:
        hold(int(sys.argv[2]), int(sys.argv[3]))
    sys.exit(main(Path(sys.argv[1])))
