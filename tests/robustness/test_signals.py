"""Process trees and signals (issue 16, mechanism 3): SIGINT, SIGTERM and SIGHUP during the checks end
``edgest compile`` with one line and exit 128 + N, leaving no run folder, staging folder, temp folder or
check worker; ``kill -9`` of the compile takes the worker and what its runtime started along.

The compile runs the real CLI on a tiny model file with a plugin target whose runner hangs in the
check worker after starting a helper process, as a runtime's own server would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgest.testing.fake_dist import write_fake_distribution
from edgest.testing.processes import alive

PLUGIN = '''
import os, subprocess, sys, time
from pathlib import Path
import edgest

class StuckTarget(edgest.Target):
    """Lowers at once; its runner starts a helper process, says so, then never finishes loading."""
    name = "stuck"
    artifact_format = "bin"
    def lower(self, program, example_inputs, out_dir):
        path = out_dir / "model.bin"
        path.write_bytes(b"artifact")
        return edgest.Lowered(path)
    def load(self, path, threads):
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        marker = os.environ["EDGEST_TEST_MARKER"]
        Path(marker + ".tmp").write_text(f"{os.getpid()} {helper.pid}")
        os.replace(marker + ".tmp", marker)
        time.sleep(300)

class SlowLowerTarget(StuckTarget):
    """Says so once it is lowering, then never finishes: the check process started ahead is waiting meanwhile."""
    name = "slowlower"
    def lower(self, program, example_inputs, out_dir):
        marker = os.environ["EDGEST_TEST_MARKER"]
        Path(marker + ".tmp").write_text(f"{os.getpid()} 0")
        os.replace(marker + ".tmp", marker)
        time.sleep(300)

@edgest.hookimpl
def register_targets(register):
    register(StuckTarget)
    register(SlowLowerTarget)
'''

MODEL = """
import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)
    def forward(self, x):
        return self.fc(x)
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    write_fake_distribution(plugins, "stuckplugin", PLUGIN)
    for name in ("run", "tmp"):
        (tmp_path / name).mkdir()
    (tmp_path / "run" / "net.py").write_text(textwrap.dedent(MODEL))
    return tmp_path


def _default_signals() -> None:
    # as from a terminal: a background job (nohup, `cmd &`) starts with SIGINT/SIGHUP ignored, and edgest keeps them so
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _start_compile(work: Path, target: str = "stuck") -> tuple[subprocess.Popen[str], int, int]:
    """Start the compile; once the check worker is stuck, the compile, worker pid and helper pid (for the
    ``slowlower`` target: once it is lowering, the compile, its own pid and 0)."""
    marker = work / "worker.pids"
    env = {**os.environ, "PYTHONPATH": str(work / "plugins"), "TMPDIR": str(work / "tmp"),
           "EDGEST_TEST_MARKER": str(marker), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgest", "compile", "--model", "net.py:Net", "--input-shape", "2x8",
         "--target", target, "--out", "out", "--samples", "1"],
        cwd=work / "run", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_signals,
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not marker.exists():
        proc.kill()
        pytest.fail(f"the check worker never started: {proc.communicate()[1][-2000:]}")
    worker, helper = (int(p) for p in marker.read_text().split())
    return proc, worker, helper


def _gone_eventually(*pids: int, bound_s: float = 30.0) -> list[int]:
    """The pids still alive after waiting up to ``bound_s`` (a generous bound, not a speed check); kills them."""
    deadline = time.monotonic() + bound_s
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    return left


pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_signal_during_checks_cleans_up(work: Path, signum: int) -> None:
    proc, worker, helper = _start_compile(work)
    staging = [p.name for p in (work / "run").iterdir() if p.name.startswith(".out.partial-")]
    assert len(staging) == 1, "the compile should be staging its run folder while the checks run"
    assert [p.name for p in (work / "tmp").iterdir() if p.name.startswith("edgest-")], "no check temp folder seen"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, (proc.returncode, err)
    assert "Traceback" not in err, err
    progress = re.compile(r"\d\d:\d\d:\d\d ")  # the compile's stage log (edgest.progress) before the interrupt
    assert [line for line in err.splitlines() if line.strip() and not progress.match(line)] == [
        f"edgest: interrupted ({name}); nothing was written"]
    assert err.splitlines()[-1] == f"edgest: interrupted ({name}); nothing was written"
    assert sorted(p.name for p in (work / "run").iterdir()) == ["net.py"]  # no out, no .out.partial-*
    assert [p.name for p in (work / "tmp").iterdir() if p.name.startswith("edgest-")] == []
    assert _gone_eventually(worker, helper) == [], "the check worker or its helper outlived the compile"


def test_kill_9_of_the_compile_takes_the_worker_along(work: Path) -> None:
    proc, worker, helper = _start_compile(work)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert _gone_eventually(worker, helper) == [], "the check worker or its helper outlived a kill -9 of the compile"


def _ready_workers(parent: int) -> list[int]:
    """The pids of ``parent``'s children that are check workers started ahead (``edgest.checks.worker --ready``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"edgest.checks.worker" in cmd and b"--ready" in cmd:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_the_worker_started_ahead_ends_with_a_compile_stopped_while_lowering(work: Path, how: str) -> None:
    proc, lowering, _ = _start_compile(work, "slowlower")
    assert lowering == proc.pid
    workers = _ready_workers(proc.pid)
    assert len(workers) == 1, "the compile should have started its check process while lowering"
    proc.send_signal(getattr(signal, how))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (128 + signal.SIGTERM if how == "SIGTERM" else -signal.SIGKILL), err
    assert _gone_eventually(*workers) == [], f"the check process started ahead outlived a {how} of the compile"
    assert [p.name for p in (work / "tmp").iterdir() if p.name.startswith("edgest-")] == [] or how == "SIGKILL"


# --- the pieces, without torch ------------------------------------------------------------------

def _python(code: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60,
                          **kw)  # type: ignore[call-overload]


def test_each_signal_raises_interrupted_with_its_number() -> None:
    proc = _python("""
        import os, signal
        from edgest import interrupts
        interrupts.install()
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            try:
                os.kill(os.getpid(), signum)
                raise SystemExit("not raised")
            except KeyboardInterrupt as exc:
                print(type(exc).__name__, interrupts.exit_code(exc), interrupts.message(exc))
            interrupts.install()
        """, preexec_fn=_default_signals)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "Interrupted 143 edgest: interrupted (SIGTERM); nothing was written",
        "Interrupted 129 edgest: interrupted (SIGHUP); nothing was written",
        "Interrupted 130 edgest: interrupted (SIGINT); nothing was written",
    ]


def test_second_signal_lets_cleanup_finish_and_third_ends_at_once() -> None:
    proc = _python("""
        import os, signal
        from edgest import interrupts
        interrupts.install()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGTERM)  # during clean-up: ignored
            print("cleaned up", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)  # the third: the default action
            print("still running", flush=True)
        """, preexec_fn=_default_signals)
    assert proc.stdout.splitlines() == ["cleaned up"]
    assert proc.returncode == -signal.SIGTERM


def test_a_signal_ignored_at_start_stays_ignored() -> None:
    def nohup() -> None:
        _default_signals()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    proc = _python("""
        import os, signal
        from edgest import interrupts
        interrupts.install()
        os.kill(os.getpid(), signal.SIGHUP)
        print("survived SIGHUP under nohup")
        """, preexec_fn=nohup)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "survived SIGHUP under nohup"


def test_tvm_qemu_worker_exits_when_its_parent_is_killed() -> None:
    qemu_worker = pytest.importorskip("edgest_tvm.qemu_worker", reason="edgest-tvm not installed")
    folder = str(Path(qemu_worker.__file__).parent)
    grandchild = (f"import sys, time; sys.path.insert(0, {folder!r}); import qemu_worker; "
                  "qemu_worker._die_with_parent(); print('ready', flush=True); time.sleep(300)")
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {grandchild!r}], stdout=subprocess.PIPE, text=True)
        child.stdout.readline()
        print(child.pid, flush=True)
        time.sleep(300)
        """)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    assert _gone_eventually(pid) == [], "the emulated TVM worker outlived the process that started it"


def test_in_process_callers_get_their_handlers_back() -> None:
    from edgest import interrupts

    before = {s: signal.getsignal(s) for s in interrupts.HANDLED}
    with interrupts.handled():
        assert all(signal.getsignal(s) not in (before[s], signal.SIG_DFL) for s in interrupts.HANDLED
                   if before[s] != signal.SIG_IGN)
    assert {s: signal.getsignal(s) for s in interrupts.HANDLED} == before


_CTRL_C_AT_EXIT = """
import atexit, os, signal, sys, time
from edgest import cli as c

@c.cli.command("boom")
def boom():
    raise KeyboardInterrupt

def second_ctrl_c():  # a library's atexit hook (torch's _del_library) that the user's second Ctrl-C lands in
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
    print("shutdown finished", flush=True)

atexit.register(second_ctrl_c)
sys.argv = ["edgest", "boom"]
c.main()
"""


def test_a_second_ctrl_c_while_shutting_down_is_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-c", _CTRL_C_AT_EXIT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "edgest: interrupted (SIGINT); nothing was written", proc.stderr
    assert "shutdown finished" in proc.stdout


def test_an_interrupt_after_the_run_folder_is_in_place_says_it_was_written(tmp_path, capsys, monkeypatch) -> None:
    from edgest.cli import main

    def ctrl_c_while_printing(*args, **kwargs):  # the outside round's s06: Ctrl-C just after the report was written
        raise KeyboardInterrupt

    monkeypatch.setattr("edgest.report.console.print_report", ctrl_c_while_printing)
    with pytest.raises(SystemExit) as exit_:
        main(["compile", "--model", "squeezetime_tiny", "--target", "eager", "--samples", "1", "-q",
              "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 130
    assert err == f"edgest: interrupted (SIGINT); '{tmp_path / 'run'}' was written in full before it", err
    assert (tmp_path / "run" / "report.json").is_file()
