"""User model files that misbehave, and what a forward may return.

A file that exits or parses argv while imported or built, or whose forward takes several
inputs, is one line naming the file; argparse's own usage text never reaches the terminal.
Outputs: tensors and tuples, lists and dicts of them are flattened (every output compared,
:func:`edgest.checks.accuracy.compare_multi`); what cannot be compared is one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from edgest.checks import accuracy
from edgest.checks.outputs import flatten_outputs, forward_outputs
from edgest.errors import BadInput
from edgest.model import check_forward, load_user_model

HEAD = "import sys, torch\n"
NET = "class Net(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n"


def _file(tmp_path: Path, body: str, name: str = "net.py") -> str:
    path = tmp_path / name
    path.write_text(HEAD + textwrap.dedent(body))
    return f"{path}:Net"


ARGPARSE = """
import argparse
parser = argparse.ArgumentParser(prog="train_my_net")
parser.add_argument("--lr", type=float, required=True)
args = parser.parse_args()
""" + NET


def test_argparse_at_import_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = list(sys.argv)
    with pytest.raises(BadInput) as err:
        load_user_model(_file(tmp_path, ARGPARSE))
    msg = str(err.value)
    assert "model file" in msg and "net.py' exited while being imported (SystemExit 2; it parses command-line arguments" in msg
    assert 'if __name__ == "__main__"' in msg and "\n" not in msg
    out = capsys.readouterr()
    assert "usage:" not in out.err + out.out and "train_my_net" not in out.err + out.out  # argparse's text did not leak
    assert sys.argv == argv


def test_the_file_sees_only_its_own_path_in_argv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = _file(tmp_path, "ARGV = list(sys.argv)\nprint('hello from import')\n" + NET)
    sys.argv.append("--edgest-only-flag")
    try:
        model = load_user_model(ref)
    finally:
        sys.argv.pop()
    assert type(model).forward.__globals__["ARGV"] == [ref.rpartition(":")[0]]  # the file's module globals
    assert "hello from import" not in capsys.readouterr().out  # would spoil --json output


@pytest.mark.parametrize("body, words", [
    ("sys.exit(3)\n" + NET, "(SystemExit 3)"),
    ("raise SystemExit\n" + NET, "(SystemExit)"),
    ("exit('bye')\n" + NET, "(SystemExit 'bye')"),
])
def test_exit_at_import(tmp_path: Path, body: str, words: str) -> None:
    with pytest.raises(BadInput, match="exited while being imported") as err:
        load_user_model(_file(tmp_path, body))
    assert words in str(err.value) and "it parses" not in str(err.value)


def test_exit_while_building(tmp_path: Path) -> None:
    body = "class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        sys.exit(1)\n"
    with pytest.raises(BadInput, match=r"exited while building 'Net' \(SystemExit 1\); remove the sys.exit"):
        load_user_model(_file(tmp_path, body))


def test_os_exit_at_import_or_while_building_is_one_line_not_the_end_of_edgest(tmp_path: Path) -> None:
    hard_exit = os._exit
    with pytest.raises(BadInput, match=r"called os._exit\(3\) while being imported, which would end edgest"):
        load_user_model(_file(tmp_path, "import os\nos._exit(3)\n" + NET))
    body = "class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        import os; os._exit(4)\n"
    with pytest.raises(BadInput, match=r"called os._exit\(4\) while building 'Net'"):
        load_user_model(_file(tmp_path, body, "built.py"))
    assert os._exit is hard_exit  # put back for everyone else


def test_a_file_that_never_finishes_importing_is_stopped_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    monkeypatch.setenv("EDGEST_USER_CODE_TIMEOUT_S", "0.5")
    body = "while True:\n    try:\n        pass\n    except Exception:\n        pass\n" + NET  # a broad except cannot swallow it
    with pytest.raises(BadInput, match=r"did not finish being imported in 0.5 s \(a loop or a download at import\?\)"):
        load_user_model(_file(tmp_path, body))
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None) and signal.getitimer(signal.ITIMER_REAL)[0] == 0


def test_a_file_that_changes_folder_does_not_move_edgest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)  # the outside round: the run landed in ./elsewhere/run while the report said run/
    load_user_model(_file(tmp_path, "import os\nos.chdir('elsewhere')\n" + NET))
    assert Path.cwd() == tmp_path


def _compile_in_a_process(tmp_path: Path, head: str) -> subprocess.CompletedProcess:
    """``edgest compile`` (eager) of a model file that runs ``head`` at import, as its own process."""
    ref = _file(tmp_path, head + NET)
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    return subprocess.run([sys.executable, "-m", "edgest", "compile", "--model", ref, "--input-shape", "1x4", "--target",
                           "eager", "--samples", "1", "-q", "--out", str(tmp_path / "run")],
                          check=False, capture_output=True, text=True, timeout=300, env=env)


def test_a_thread_the_model_leaves_running_does_not_keep_edgest_alive(tmp_path: Path) -> None:
    proc = _compile_in_a_process(tmp_path, "import threading, time\nthreading.Thread(target=time.sleep, args=(10000,), "
                                           "name='forever').start()\n")
    assert proc.returncode == 0, proc.stderr
    assert "thread 'forever' (started by the model's code?) is still running; exiting without waiting" in proc.stderr


def test_a_thread_pool_left_open_ends_without_a_note(tmp_path: Path) -> None:
    """NNCF leaves a ThreadPoolExecutor open after an OpenVINO int8 compile: its idle worker is no news to the user."""
    proc = _compile_in_a_process(tmp_path, "from concurrent.futures import ThreadPoolExecutor\n"
                                           "POOL = ThreadPoolExecutor(1)\nPOOL.submit(int).result()\n")
    assert proc.returncode == 0, proc.stderr
    assert "still running" not in proc.stderr and (tmp_path / "run" / "report.json").is_file()


def test_exit_waits_once_for_all_stray_threads_and_never_for_pool_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each thread used to get 2 s of its own: OpenVINO's telemetry pool (six idle workers) held every OpenVINO
    compile 12 s after its report. Now the threads share one wait, and idle pool workers get none."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from edgest import cli

    pool = ThreadPoolExecutor(3, thread_name_prefix="testpool")
    for future in [pool.submit(int) for _ in range(3)]:
        future.result()
    stop = threading.Event()
    slow = [threading.Thread(target=stop.wait, name=f"slow{i}") for i in range(2)]
    for t in slow:
        t.start()
    joined: list[tuple[str, float | None]] = []
    real_join = threading.Thread.join

    def join(self: threading.Thread, timeout: float | None = None) -> None:
        joined.append((self.name, timeout))
        real_join(self, timeout)

    class Exited(Exception):
        pass

    def hard_exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(threading.Thread, "join", join)
    monkeypatch.setattr(os, "_exit", hard_exit)
    try:
        with pytest.raises(Exited) as exited:
            cli._exit_past_stray_threads(3, wait_s=0.3)
        during = list(joined)  # pool.shutdown() below joins the pool's workers itself
    finally:
        stop.set()
        pool.shutdown()
    assert exited.value.args == (3,)
    assert not [name for name, _ in during if name.startswith("testpool")]
    waits = dict(during)
    assert waits["slow0"] == pytest.approx(0.3, abs=0.05) and waits["slow1"] < 0.1  # the second got what was left


def test_a_deleted_working_folder_is_named(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    code = f"import os, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); sys.argv = ['edgest', 'list']; " \
           "from edgest.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == ("edgest: error: the current folder no longer exists (it was "
                                                            "deleted or moved); cd to an existing folder and run again")


def test_a_model_file_that_is_not_python_is_named_not_taken_for_a_zoo_name(tmp_path: Path) -> None:
    from edgest.plan import plan

    ref = _file(tmp_path, "", name="m.txt")
    with pytest.raises(BadInput, match=r"^model file '.*m.txt' cannot be imported as Python; give a .py file$"):
        plan(ref, "eager", input_shape=(1, 3), out_dir=tmp_path / "run")


def test_sibling_module_imports_like_a_script(tmp_path: Path) -> None:
    (tmp_path / "layers_for_edgest_test.py").write_text("import torch\nBlock = torch.nn.Identity\n")
    ref = _file(tmp_path, "from layers_for_edgest_test import Block\n" + NET)
    path_before = list(sys.path)
    assert isinstance(load_user_model(ref), torch.nn.Module)
    assert sys.path == path_before


class _Two(torch.nn.Module):
    def forward(self, x, mask):
        return x


class _Kw(torch.nn.Module):
    def forward(self, x, *, scale):
        return x


class _None(torch.nn.Module):
    def forward(self):
        return torch.zeros(1)


class _Ok(torch.nn.Module):
    def forward(self, x, mask=None):
        return x


def test_forward_signatures() -> None:
    with pytest.raises(BadInput, match=r"forward takes 2 inputs \(x, mask\); edgest compiles models with one input"):
        check_forward(_Two(), "model 'Two' in 'two.py'")
    with pytest.raises(BadInput, match=r"takes 2 inputs \(x, scale\)"):
        check_forward(_Kw(), "m")
    with pytest.raises(BadInput, match="takes no input tensor"):
        check_forward(_None(), "m")
    check_forward(_Ok(), "m")
    check_forward(torch.nn.Linear(2, 2), "m")


def test_cli_model_file_with_argparse_prints_one_line(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(HEAD + textwrap.dedent(ARGPARSE))
    env = {k: v for k, v in os.environ.items() if k not in ("EDGEST_LOAD_PLUGINS", "EDGEST_DISABLE_PLUGIN_AUTOLOAD")}
    proc = subprocess.run([sys.executable, "-m", "edgest", "compile", "--model", "net.py:Net", "--target", "eager",
                           "--input-shape", "1x4", "--out", "run"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("edgest: error: model file 'net.py' exited")
    assert "usage:" not in proc.stderr.lower() and "train_my_net" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.py"]


# --- outputs --------------------------------------------------------------------------------------

WHERE = "model file 'net.py'"


def test_flatten_accepts_tensors_and_containers_in_order() -> None:
    out = flatten_outputs((torch.ones(1, 3), {"b": torch.zeros(2), "a": None, "c": [torch.tensor(5.0)]}), WHERE)
    assert [a.shape for a in out] == [(1, 3), (2,), (1,)]  # the 0-d scalar becomes one element
    assert out[2][0] == 5.0 and all(a.dtype == np.float32 for a in out)
    assert flatten_outputs(torch.ones(2, dtype=torch.bfloat16), WHERE)[0].dtype == np.float32
    assert flatten_outputs(np.ones((2, 2), np.float64), WHERE)[0].shape == (2, 2)


@pytest.mark.parametrize("value, words", [
    (None, "returns None; edgest compares float tensors"),
    (3, "returns an int as its output, not a tensor"),
    ("logits", "returns a str as its output"),
    ((), "returns an empty tuple"),
    ({"a": None}, "returns only None values"),
    (torch.ones(2, dtype=torch.int64), "returns an int64 tensor as its output"),
    (torch.ones(2, dtype=torch.bool), "returns a bool tensor"),
    ((torch.ones(1), [1.5]), "returns a float as output [1][0], not a tensor"),
    ({"logits": torch.zeros(0, 3)}, "returns an empty tensor (shape (0, 3)) as output ['logits']"),
])
def test_flatten_refuses_what_cannot_be_compared(value: object, words: str) -> None:
    with pytest.raises(BadInput) as err:
        flatten_outputs(value, WHERE)
    msg = str(err.value)
    assert msg.startswith(WHERE) and words in msg and "\n" not in msg
    assert "tuple, list or dict" in msg


def test_compare_multi_judges_every_output() -> None:
    rng = np.random.default_rng(0)
    refs = [[rng.standard_normal((1, 10)).astype(np.float32), rng.standard_normal((1, 4)).astype(np.float32)] for _ in range(4)]
    same = [[a.copy() for a in s] for s in refs]
    m = accuracy.compare_multi(refs, same)
    assert m["outputs"] == 2 and len(m["per_output"]) == 2
    assert m["sqnr_db"] == accuracy.SQNR_CAP_DB and m["top1_agreement"] == 1.0
    broken = [[s[0].copy(), -s[1]] for s in refs]  # the second output is wrong, the first exact
    m = accuracy.compare_multi(refs, broken)
    assert m["per_output"][0]["sqnr_db"] == accuracy.SQNR_CAP_DB
    assert m["per_output"][1]["sqnr_db"] < 0 and m["sqnr_db"] == m["per_output"][1]["sqnr_db"]
    assert m["cosine"] == pytest.approx(-1.0) and m["top1_agreement"] < 1.0
    assert accuracy.within(m, accuracy.LIMITS["fp32"])  # judged on the bad output, not on the first only
    single = accuracy.compare_multi([[s[0]] for s in refs], [[s[0]] for s in same])
    assert single["outputs"] == 1 and "per_output" not in single
    assert {k: v for k, v in single.items() if k != "outputs"} == accuracy.compare([s[0] for s in refs], [s[0] for s in same])


def test_compare_multi_refuses_misaligned_outputs() -> None:
    a = [np.ones(3, np.float32)]
    with pytest.raises(ValueError, match="different numbers of outputs"):
        accuracy.compare_multi([a, a], [a, a + a])
    with pytest.raises(ValueError, match="2 reference samples but 1"):
        accuracy.compare_multi([a, a], [a])


class _Exits(torch.nn.Module):
    def forward(self, x):
        sys.exit(3)


class _Pair(torch.nn.Module):
    def forward(self, x):
        return x.half(), {"sum": x.sum()}


def test_forward_outputs_flattens_and_turns_an_exit_into_one_line() -> None:
    out = forward_outputs(_Pair(), [torch.ones(1, 3)], WHERE)
    assert [(a.shape, a.dtype) for a in out] == [((1, 3), np.float32), ((1,), np.float32)] and out[1][0] == 3.0
    with pytest.raises(BadInput, match=r"model file 'net.py' exited \(SystemExit 3\) while its forward ran"):
        forward_outputs(_Exits(), [torch.ones(1)], WHERE)
