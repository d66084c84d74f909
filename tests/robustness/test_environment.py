"""EDGEST_* environment variables with values that cannot work: one line naming the variable, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgest.cli import main
from edgest.environment import user_code_seconds


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as end:
        main(list(args))
    out = capsys.readouterr()
    return end.value.code, out.out, out.err


@pytest.mark.parametrize(("name", "value", "says"), [
    ("EDGEST_LOCK_DIR", "/proc", "EDGEST_LOCK_DIR='/proc' is not a folder edgest can write its timing lock in"),
    ("EDGEST_LOCK_DIR", "{file}", "is not a folder edgest can write its timing lock in; point it at a writable folder"),
    ("EDGEST_USER_CODE_TIMEOUT_S", "abc", "EDGEST_USER_CODE_TIMEOUT_S='abc' is not a positive number of seconds"),
    ("EDGEST_USER_CODE_TIMEOUT_S", "-5", "EDGEST_USER_CODE_TIMEOUT_S='-5' is not a positive number of seconds"),
    ("EDGEST_TIMING_LOCK", "sometimes", "EDGEST_TIMING_LOCK='sometimes' is not a timing policy; give turns or alone"),
])
@pytest.mark.parametrize("command", ["compile", "bench"])
def test_a_variable_that_cannot_work_is_one_line_and_nothing_is_written(capsys, monkeypatch, tmp_path: Path,
                                                                       name: str, value: str, says: str, command: str):
    """EDGEST_LOCK_DIR=/proc failed the compile's accuracy check ("runner failed: FileNotFoundError") and left a
    run folder; EDGEST_USER_CODE_TIMEOUT_S=abc was silently 300 s."""
    (tmp_path / "f").write_text("")
    monkeypatch.setenv(name, value.format(file=tmp_path / "f"))
    args = (["compile", "--model", "lmuformer_tiny", "--target", "eager"] if command == "compile" else
            ["bench", "--models", "lmuformer_tiny", "--targets", "eager"])
    code, out, err = _cli(capsys, *args, "--out", str(tmp_path / "out"))
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("edgest: error: "), err
    assert says in err, err
    assert not (tmp_path / "out").exists()


def test_the_user_code_timeout_is_read_as_given_or_300(monkeypatch):
    monkeypatch.delenv("EDGEST_USER_CODE_TIMEOUT_S", raising=False)
    assert user_code_seconds() == 300.0
    monkeypatch.setenv("EDGEST_USER_CODE_TIMEOUT_S", " 0.5 ")
    assert user_code_seconds() == 0.5


@pytest.mark.parametrize(("name", "value", "says"), [
    ("EDGEST_LOAD_PLUGINS", "nonexistent", "(EDGEST_LOAD_PLUGINS='nonexistent' loads only those plugins; unset it"),
    ("EDGEST_DISABLE_PLUGIN_AUTOLOAD", "1", "(EDGEST_DISABLE_PLUGIN_AUTOLOAD is set: no installed plugin is loaded"),
])
def test_an_unknown_name_says_when_a_variable_kept_its_plugin_out(capsys, monkeypatch, tmp_path: Path, name: str,
                                                                  value: str, says: str):
    """It said only "unknown target 'onnx'; available: eager", with edgest-onnx installed."""
    from edgest.plugins import new_plugin_manager

    monkeypatch.setenv(name, value)
    monkeypatch.setattr("edgest.plugins._PM", new_plugin_manager())  # the process's own is back after the test
    code, out, err = _cli(capsys, "compile", "--model", "lmuformer_tiny", "--target", "onnx", "--out", str(tmp_path / "o"))
    assert code == 2 and out == "" and err.count("\n") == 1 and "unknown " in err and says in err, err


def test_an_unknown_precision_does_not_blame_the_plugin_variables(capsys, monkeypatch, tmp_path: Path):
    """Precisions are edgest's own, not a plugin's: the note belongs to the registry's names only."""
    monkeypatch.setenv("EDGEST_LOAD_PLUGINS", "models")
    code, out, err = _cli(capsys, "compile", "--model", "lmuformer_tiny", "--target", "eager", "--precision", "int4",
                          "--out", str(tmp_path / "o"))
    assert code == 2 and out == "" and "unknown precision 'int4'" in err and "EDGEST_LOAD_PLUGINS" not in err, err
