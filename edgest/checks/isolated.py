"""Run a target's runner in a child process with a time limit.

The artifact is loaded, run on every input set, then timed, all in a fresh Python process,
so a runtime that segfaults or hangs costs the check, not the compile. The parent gets back
outputs, load and latency figures, or the reason the child died.

The child leads its own process group, which the parent kills when the check ends, times out or
is interrupted (Ctrl-C, SIGTERM: :mod:`edgest.interrupts`); if the parent itself is killed, the
child and what it started die too (:mod:`edgest.checks.lifeline`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.checks import lifeline
from edgest.checks.latency import LatencyConfig
from edgest.resources import check_free_disk

if TYPE_CHECKING:
    from edgest.checks.ready import ReadyWorker
    from edgest.target import Target


@dataclass(frozen=True)
class ChildOutcome:
    """What came back from the child: outputs per input set, timings, or why it failed.

    ``label`` names what ran when it is not the target's own runtime (e.g. "MIL reference (not
    the Core ML runtime)"); ``timing_unavailable`` is why the runner was deliberately not timed.
    """

    outputs: list[list[np.ndarray]] | None = None
    load: dict[str, float] = field(default_factory=dict)
    latency: dict[str, float] | None = None
    threads: int = 0
    unavailable: str = ""
    failure: str = ""
    label: str = ""
    timing_unavailable: str = ""
    #: a streaming run's figures (:mod:`edgest.streaming.worker`) and first outputs per sequence (steps first)
    streaming: dict[str, Any] | None = None
    stream_outputs: list[np.ndarray] | None = None


def class_path(cls: type) -> str:
    """``module:qualname`` for a class the child can import again."""
    if "<locals>" in cls.__qualname__:
        raise ValueError(f"{cls.__qualname__} is defined inside a function; define it at module level")
    return f"{cls.__module__}:{cls.__qualname__}"


def load_class(path: str) -> Any:
    """The class a :func:`class_path` string names, imported again (in a child process)."""
    import importlib

    module, _, qualname = path.partition(":")
    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    return cls


def signal_name(code: int) -> str:
    """The name of the signal a negative process exit code stands for (``SIGSEGV``), or ``signal N``."""
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


#: the file a ``--ready`` worker writes into the request's folder as soon as it has read it
TAKEN = "taken"


def run_in_child(
    target: Target,
    artifact: Path,
    inputs: Sequence[Sequence[np.ndarray]],
    threads: int = 1,
    latency: LatencyConfig | None = LatencyConfig(),
    timeout_s: float = 600.0,
    streams: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
    ready: ReadyWorker | None = None,
) -> ChildOutcome:
    """Load ``artifact`` with ``target`` in a child, run ``inputs``, time it; never raises for the child's faults.

    ``ready`` (:mod:`edgest.checks.ready`): a child started earlier for this target, used when it still waits
    at ``threads``; else a fresh one starts now.

    ``streams`` (step inputs per sequence, initial states) also streams whole sequences with the
    state fed back (:mod:`edgest.streaming.worker`). BadInput, before anything is written, when the
    temp folder's disk cannot hold the inputs.
    """
    check_room(inputs)
    from edgest.outdir import temp_folder

    with temp_folder("edgest-check-") as work:
        write_request(work, target, artifact, inputs, threads, latency, streams)
        proc = ready.take(threads) if ready is not None else None
        if proc is not None:
            returncode, failure = _hand_over(proc, work, timeout_s)
            if returncode and not (work / TAKEN).exists():
                proc = None  # it died before it took the request (killed from outside): a fresh child runs it
        if proc is None:
            returncode, failure = _run_worker(work, worker_env(threads), timeout_s)
        if returncode is not None:
            failure = exit_failure(returncode, work, work / "stderr.txt" if proc is None else ready.stderr_path)
        return collect(work, len(inputs), failure)


def check_room(inputs: Sequence[Sequence[np.ndarray]]) -> None:
    """BadInput when the temp folder's disk cannot hold ``inputs`` (before anything is written)."""
    need = sum(np.asarray(x).nbytes for xs in inputs for x in xs)
    check_free_disk(tempfile.gettempdir(), need, "the check's inputs", "free some space or point TMPDIR to a disk with room")


def write_request(work: Path, target: Target, artifact: Path, inputs: Sequence[Sequence[np.ndarray]], threads: int,
                  latency: LatencyConfig | None,
                  streams: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None) -> None:
    """The worker's ``request.json`` and ``inputs.npz`` (and streamed sequences) in ``work``."""
    np.savez(work / "inputs.npz", **{f"s{i}_in{j}": x for i, xs in enumerate(inputs) for j, x in enumerate(xs)})
    request = {
        "target": class_path(type(target)),
        "options": target.options,
        "artifact": str(artifact),
        "samples": len(inputs),
        "threads": threads,
        "latency": asdict(latency) if latency else None,
    }
    if streams is not None:
        from edgest.streaming.worker import INPUTS

        np.savez(work / INPUTS, **{f"q{i}": q for i, q in enumerate(streams[0])},
                 **{f"init{j}": a for j, a in enumerate(streams[1])})
        request["streaming"] = {"sequences": len(streams[0]), "states": len(streams[1])}
    (work / "request.json").write_text(json.dumps(request))


def worker_env(threads: int) -> dict[str, str]:
    """The worker's environment: this process's import path, and ``threads`` OpenMP threads unless set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    return env


def exit_failure(returncode: int, work: Path, stderr: Path) -> str:
    """The failure a worker's exit code says for the request in ``work`` ("" when it wrote its own result)."""
    if returncode < 0:
        return f"runtime crashed ({signal_name(returncode)}) in the check process"
    if returncode != 0 and not (work / "result.json").exists():
        tail = stderr.read_text(errors="replace").strip().splitlines()[-1:] if stderr.exists() else []
        return f"check process exited with {returncode}: {(tail or ['no output'])[0][:300]}"
    return ""


def _run_worker(work: Path, env: dict[str, str], timeout_s: float) -> tuple[int | None, str]:
    """Run the worker on ``work``; its exit code (None when it timed out) and the timeout's failure text.

    However this returns or raises (an interrupt included), the worker's group is killed first.
    """
    read_fd, write_fd = lifeline.open_pipe()
    cmd = [sys.executable, "-m", "edgest.checks.worker", str(work), str(read_fd), str(os.getpid())]
    try:
        with open(work / "stderr.txt", "w") as err:
            try:
                proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                        start_new_session=True, pass_fds=(read_fd,))
            finally:
                os.close(read_fd)
            return _wait_then_kill(proc, timeout_s)
    finally:
        os.close(write_fd)


def _hand_over(proc: subprocess.Popen[bytes], work: Path, timeout_s: float) -> tuple[int | None, str]:
    """Give a waiting ``--ready`` worker the request in ``work``; as :func:`_run_worker` from there."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(f"{work}\n".encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # it died just now: its exit status says how
    return _wait_then_kill(proc, timeout_s)


def _wait_then_kill(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[int | None, str]:
    """``proc``'s exit code (None when it timed out, with the failure text); its group is killed however this ends."""
    try:
        return proc.wait(timeout=timeout_s), ""
    except subprocess.TimeoutExpired:
        return None, f"check process did not finish within {timeout_s:g} s and was killed"
    finally:
        end_group(proc)


def end_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a check worker's process group (the worker and anything its runtime started), reap it, close its stdin."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    if proc.stdin is not None:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass


def collect(work: Path, samples: int, failure: str) -> ChildOutcome:
    """What the worker left in ``work`` (outputs, figures), with ``failure`` if the parent saw one."""
    result: dict[str, Any] = {}
    if (work / "result.json").exists():
        result = json.loads((work / "result.json").read_text())
    outputs = None
    if (work / "outputs.npz").exists():
        with np.load(work / "outputs.npz") as data:
            outputs = [[data[k] for k in sorted((k for k in data.files if k.startswith(f"s{i}_")), key=_out_index)] for i in range(samples)]
    return ChildOutcome(
        outputs=outputs,
        load=result.get("load", {}),
        latency=result.get("latency"),
        threads=int(result.get("threads", 0)),
        unavailable=result.get("unavailable", ""),
        failure=failure or result.get("error", ""),
        label=result.get("label", ""),
        timing_unavailable=result.get("timing_unavailable", ""),
        streaming=result.get("streaming"),
        stream_outputs=_stream_outputs(work),
    )


def _stream_outputs(work: Path) -> list[np.ndarray] | None:
    if not (work / "stream_outputs.npz").exists():
        return None
    with np.load(work / "stream_outputs.npz") as data:
        return [data[f"q{i}"] for i in range(len(data.files))]


def _out_index(key: str) -> int:
    return int(key.rsplit("out", 1)[1])
