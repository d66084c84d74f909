"""Targets whose runtimes misbehave, for the child-process check tests (tests/core/test_isolation.py).

Everything here is at module level so that the check's child process can import it again by
``module:qualname`` (it gets the parent's ``sys.path`` through ``PYTHONPATH``). Importing this
module imports no torch: only :func:`tiny_mlp` and the ``late_segv`` runner need it.

The module itself is also a plugin (``pm.add(crashy_targets, "crashy")``): it registers the
targets below and one model, ``tiny_mlp``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import edgest
from edgest import hookimpl
from edgest.errors import TargetUnavailable
from edgest.target import Lowered, Target
from edgest.targets.eager import EagerRunner, EagerTarget

#: what every dummy runner returns: one (2, 4) output, the shape of tiny_mlp's output
DUMMY_OUTPUT = np.zeros((2, 4), np.float32)


def tiny_mlp() -> Any:
    """The model the end-to-end tests compile: input (2, 8), output (2, 4)."""
    import torch

    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


TINY_MLP = edgest.ModelEntry(
    spec=edgest.ModelSpec(name="tiny_mlp", family="test", input=edgest.InputSpec((2, 8)), num_classes=4),
    factory="crashy_targets:tiny_mlp",
)


class _DummyTarget(Target):
    """Writes a small dummy file as its artifact; subclasses decide how loading/running misbehaves."""

    artifact_format = "bin"

    def lower(self, program: Any, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        path = out_dir / "model.bin"
        path.write_bytes(b"dummy artifact\n")
        return Lowered(path, {"dummy": True})


class SegfaultRunner:
    threads = 1

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(60)  # the signal is delivered asynchronously; never return outputs
        return [DUMMY_OUTPUT]


class HangRunner:
    threads = 1

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        time.sleep(3600)
        return [DUMMY_OUTPUT]


class RaisingRunner:
    threads = 1

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise RuntimeError("kaboom in the vendor runtime")


class SpawningHangRunner:
    """Starts a helper process (like a runtime daemon), writes its pid next to the artifact, then hangs."""

    threads = 1

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        helper = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(3600)"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.pid_file.write_text(str(helper.pid))
        time.sleep(3600)
        return [DUMMY_OUTPUT]


class SpawningSegfaultRunner:
    """Starts a helper process that inherits stdout/stderr (as a runtime daemon may), then segfaults."""

    threads = 1

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"], stdin=subprocess.DEVNULL)
        self.pid_file.write_text(str(helper.pid))
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(60)
        return [DUMMY_OUTPUT]


class EchoRunner:
    """Well behaved: twice its first input, the artifact's bytes as numbers, and the pid of the process it runs in."""

    threads = 1

    def __init__(self, path: Path) -> None:
        self.content = np.frombuffer(path.read_bytes(), np.uint8).astype(np.float32)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0] * 2, self.content, np.array([os.getpid()], np.int64)]


def echo_pid(outcome: Any) -> int:
    """The pid an :class:`EchoRunner` ran in, from a check's outcome (which must have outputs)."""
    assert outcome.outputs is not None, outcome.failure
    return int(outcome.outputs[0][2][0])


class EchoTarget(_DummyTarget):
    """A runtime that works (for check-session tests); not registered."""

    name = "echo"

    def load(self, path: Path, threads: int) -> EchoRunner:
        return EchoRunner(path)


class ImportsRunner:
    """Says which of the modules the check process may have imported for its target are loaded: 1 or 0 each."""

    threads = 1
    modules = ("colorsys", "wave")

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [np.array([m in sys.modules for m in self.modules], np.int64)]


class RuntimeModulesTarget(_DummyTarget):
    """``requires`` two light modules; its runner needs only the first (option ``runtime_modules``: "none" for None)."""

    name = "runtime_modules"
    requires = ImportsRunner.modules

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if options.get("runtime_modules") != "none":
            self.runtime_modules = ("colorsys",)

    def load(self, path: Path, threads: int) -> ImportsRunner:
        return ImportsRunner()


class SegfaultTarget(_DummyTarget):
    """(a) The runtime segfaults on the first run."""

    name = "segv"

    def load(self, path: Path, threads: int) -> SegfaultRunner:
        return SegfaultRunner()


class HangTarget(_DummyTarget):
    """(b) The runtime never returns from run."""

    name = "hang"

    def load(self, path: Path, threads: int) -> HangRunner:
        return HangRunner()


class UnavailableAtLoadTarget(_DummyTarget):
    """(c) Lowering works here, but the runtime is missing where the artifact is loaded."""

    name = "unavail"

    def load(self, path: Path, threads: int) -> Any:
        raise TargetUnavailable("foo runtime not installed (pip install foo)")


class RaisingTarget(_DummyTarget):
    """(d) The runtime raises a plain exception on run."""

    name = "raises"

    def load(self, path: Path, threads: int) -> RaisingRunner:
        return RaisingRunner()


class SpawningHangTarget(_DummyTarget):
    """A hanging runtime that has started a helper process of its own."""

    name = "spawn_hang"

    def load(self, path: Path, threads: int) -> SpawningHangRunner:
        return SpawningHangRunner(Path(self.options["pid_file"]))


class SpawningSegfaultTarget(_DummyTarget):
    """A segfaulting runtime that has started a helper process holding the check's stdout/stderr."""

    name = "spawn_segv"

    def load(self, path: Path, threads: int) -> SpawningSegfaultRunner:
        return SpawningSegfaultRunner(Path(self.options["pid_file"]))


class LateSegfaultRunner:
    """Correct outputs (eager) for the first ``crash_after`` runs, then a segfault (during latency)."""

    def __init__(self, inner: Any, crash_after: int) -> None:
        self.inner = inner
        self.threads = inner.threads
        self.crash_after = crash_after
        self.calls = 0

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.calls += 1
        if self.calls > self.crash_after:
            os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(60)
        return self.inner.run(inputs)


class LateSegfaultTarget(EagerTarget):
    """The eager target whose runtime crashes after ``crash_after`` runs (option)."""

    name = "late_segv"

    def load(self, path: Path, threads: int) -> LateSegfaultRunner:
        return LateSegfaultRunner(EagerRunner(path, threads), int(self.options.get("crash_after", 1)))


TARGETS: tuple[type[Target], ...] = (
    SegfaultTarget, HangTarget, UnavailableAtLoadTarget, RaisingTarget, SpawningHangTarget, SpawningSegfaultTarget,
    LateSegfaultTarget,
)


@hookimpl
def register_targets(register: Callable[[type[Target]], None]) -> None:
    for cls in TARGETS:
        register(cls)


@hookimpl
def register_models(register: Callable[[edgest.ModelEntry], None]) -> None:
    register(TINY_MLP)
