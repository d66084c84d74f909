"""Usage errors, click's own included: one ``edgest: error: <problem>; <fix>`` line, exit 2, before any work.

The real CLI in a subprocess (these exit before torch is imported, so each is a fraction of a
second), in an empty folder that must stay empty.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgest.cli_usage import FiniteFloat, expects

ROOT = Path(__file__).resolve().parents[2]
_ENV_DROP = ("EDGEST_LOAD_PLUGINS", "EDGEST_DISABLE_PLUGIN_AUTOLOAD", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
TINY = ("--model", "squeezetime_tiny", "--target", "eager")
BENCH = ("bench", "--models", "squeezetime_tiny", "--targets", "eager,onnx")


def edgest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    return subprocess.run([sys.executable, "-m", "edgest", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def one_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("edgest: error: ") and "; " in lines[0], lines[0]
    assert "Usage:" not in proc.stderr and "Try " not in proc.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


CASES = {
    # click's own errors, reworded: the option, what it takes, where the help is
    "threads 0": (("compile", *TINY, "--threads", "0"),
                  ("'--threads'", "0 is not in the range", "pass --threads an integer from 1 to 256", "edgest compile --help")),
    "samples 0": (("compile", *TINY, "--samples", "0"), ("'--samples'", "pass --samples an integer from 1 to 10000")),
    "samples text": (("compile", *TINY, "--samples", "many"), ("'--samples'", "'many'", "an integer")),
    "seed -1": (("compile", *TINY, "--seed", "-1"), ("'--seed'", "an integer from 0 to 4294967295")),
    "seed huge": (("compile", *TINY, "--seed", str(2**64)), ("'--seed'", "an integer from 0 to 4294967295")),
    "train epochs 0": (("train", "--model", "squeezetime_tiny", "--out", "w.pt", "--epochs", "0"),
                       ("'--epochs'", "pass --epochs an integer from 1 to 1000", "edgest train --help")),
    "train seed -1": (("train", "--model", "squeezetime_tiny", "--out", "w.pt", "--seed", "-1"), ("'--seed'", "from 0 to")),
    "min-sqnr lots": ((*BENCH, "--min-sqnr", "lots"), ("'--min-sqnr'", "'lots'", "pass --min-sqnr a finite number")),
    "min-sqnr nan": ((*BENCH, "--min-sqnr", "nan"), ("'--min-sqnr'", "'nan' is not a finite number")),
    "min-sqnr -inf": ((*BENCH, "--min-sqnr=-inf"), ("'--min-sqnr'", "not a finite number")),
    "accuracy drop over 100": ((*BENCH, "--max-accuracy-drop", "150"), ("'--max-accuracy-drop'", "from 0 to 100")),
    "missing option": (("compile", "--target", "eager"), ("missing option '--model'", "add --model", "edgest compile --help")),
    "missing argument": (("bundle",), ("missing argument 'RUN_DIR'", "edgest bundle --help")),
    "unknown option": (("compile", *TINY, "--modle", "x"), ("no such option '--modle'", "did you mean '--model'")),
    "unknown option, none close": (("compile", *TINY, "--zzzzqqq"), ("no such option '--zzzzqqq'", "see 'edgest compile --help'")),
    "option without value": (("compile", *TINY, "--threads"), ("'--threads' requires an argument", "give --threads a value")),
    "unknown command": (("compil",), ("no such command 'compil'", "did you mean 'compile'")),
    "bad choice": (("list", "modles"), ("'modles' is not one of", "use one of models, targets, passes, plugins")),
    "bench --out is a file": ((*BENCH, "--out", "f.txt"), ("'--out'", "a folder path")),
    # edgest's own checks of the same kind, before any work
    "empty --models": (("bench", "--models", ",", "--targets", "eager"), ("--models ','", "names nothing", "e.g. --models")),
    "empty --targets": (("bench", "--models", "squeezetime_tiny", "--targets", ""), ("--targets ''", "names nothing")),
    "empty --precisions": ((*BENCH, "--precisions", " , "), ("--precisions", "names nothing")),
    "unknown precision in bench": ((*BENCH, "--precisions", "fp32,fp8"), ("unknown precision 'fp8'", "fp16")),
    "precision a target lacks": (("bench", "--models", "squeezetime_tiny", "--targets", "eager", "--precisions", "int8"),
                                 ("target 'eager' does not support precision int8", "it supports fp32", "drop int8 from --precisions")),
    "compile precision the target lacks": (("compile", *TINY, "--precision", "int8"),
                                           ("target 'eager' does not support precision int8", "use --precision fp32")),
    "latency budget naming a target not in the bench": ((*BENCH, "--max-latency-ms", "onxx=1"),
                                                        ("'onxx=1'", "target 'onxx'", "not in the bench (eager, onnx)", "did you mean 'onnx'?")),
    "latency budget inf": ((*BENCH, "--max-latency-ms", "inf"), ("latency budget 'inf'", "positive, finite")),
    "latency budget -1": ((*BENCH, "--max-latency-ms", "onnx=-1"), ("'onnx=-1'", "positive, finite")),
    "latency budget nan": ((*BENCH, "--max-latency-ms", "nan"), ("'nan'", "positive, finite")),
    "latency budget empty item": ((*BENCH, "--max-latency-ms", "onnx=20,"), ("malformed latency budget",)),
    "latency budget given twice": ((*BENCH, "--max-latency-ms", "onnx=2,onnx=3"), ("gives onnx twice",)),
    "target option naming a target not in the bench": ((*BENCH, "--target-option", "onxx:threads=2"),
                                                       ("names target 'onxx', which is not being compiled", "did you mean 'onnx'?")),
    "bench pass unknown": ((*BENCH, "--pass", "quantise"), ("unknown pass 'quantise'", "did you mean 'quantize'")),
    "bench pass option value": ((*BENCH, "--pass", "attention-to-conv:form=conv"),
                                ("pass 'attention-to-conv' option form", "'conv'")),
    "bench weights for a model not benched": ((*BENCH, "--weights", "squeezetime=w.pt"),
                                              ("names model 'squeezetime', which is not in --models", "did you mean 'squeezetime_tiny'")),
    "bench weights file missing": ((*BENCH, "--weights", "squeezetime_tiny=nope.pt"), ("weights file 'nope.pt'", "does not exist")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_usage_error_is_one_line_exit_2_and_nothing_written(tmp_path: Path, case: str) -> None:
    args, words = CASES[case]
    (tmp_path / "f.txt").write_text("mine\n")
    proc = edgest(tmp_path, *args)
    one_line(proc, *words)
    assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
    assert (tmp_path / "f.txt").read_text() == "mine\n"


def test_help_still_works(tmp_path: Path) -> None:
    for args in (("--help",), ("compile", "--help"), ("bench", "-h"), ()):
        proc = edgest(tmp_path, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "Usage:" in proc.stdout and proc.stderr == "", args
    assert "--seed" in edgest(tmp_path, "compile", "--help").stdout


def test_no_help_page_shows_an_unbounded_range_as_none() -> None:
    """click describes a range with no bounds as ``[x<=None]``; every command's help (subcommands too) shows a
    bounded range as click does and an unbounded finite number without one."""
    import click
    from click.testing import CliRunner

    from edgest.cli import cli

    def pages(group: click.Group, path: tuple[str, ...]) -> dict[tuple[str, ...], str]:
        out = {}
        for name, command in group.commands.items():
            out[(*path, name)] = CliRunner().invoke(cli, [*path, name, "--help"]).output
            if isinstance(command, click.Group):
                out.update(pages(command, (*path, name)))
        return out

    helps = pages(cli, ())
    assert {("bench",), ("optimize",), ("report", "merge")} <= set(helps)
    assert [p for p, text in helps.items() if "None" in text] == []
    assert "--min-sqnr FINITE NUMBER" in helps[("optimize",)]
    assert "[0<=x<=100]" in " ".join(helps[("optimize",)].split())  # --max-accuracy-drop keeps its bounds


def test_expects_words_every_range_kind() -> None:
    import click

    assert expects(click.IntRange(1, 256)) == "an integer from 1 to 256"
    assert expects(click.IntRange(0)) == "an integer of at least 0"
    assert expects(click.FloatRange(0, 1, min_open=True)) == "a number above 0 and at most 1"
    assert expects(FiniteFloat(0, 100)) == "a finite number from 0 to 100"
    assert expects(click.Choice(["a", "b"])) == "one of a, b"


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_finite_float_refuses_non_finite(text: str) -> None:
    import click

    with pytest.raises(click.BadParameter, match="not a finite number"):
        FiniteFloat().convert(text, None, None)
    assert FiniteFloat().convert("-3.5", None, None) == -3.5


def test_budget_api_refuses_what_the_cli_refuses() -> None:
    from edgest.bench import Budget, parse_latency_budget
    from edgest.errors import BadInput

    for kwargs in ({"min_sqnr_db": float("nan")}, {"max_accuracy_drop": -1.0}, {"max_latency_ms": {"onnx": float("inf")}},
                   {"max_latency_ms": {"*": 0.0}}):
        with pytest.raises(BadInput):
            Budget(**kwargs)
    assert parse_latency_budget("20") == {"*": 20.0}
    assert parse_latency_budget(" onnx = 20 , eager=30", ["onnx", "eager"]) == {"onnx": 20.0, "eager": 30.0}
    assert parse_latency_budget(None) == {}
    with pytest.raises(BadInput, match="did you mean 'onnx'"):
        parse_latency_budget("onxx=1", ["onnx", "eager"])


def test_readme_states_the_exit_code_table() -> None:
    text = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d+(?: / \d+)*) \| (.+) \|$", text, flags=re.M))
    assert rows["0"].startswith("passed")
    assert rows["1"].startswith("a check failed or could not run")
    assert rows["2"].startswith("bad input") and "usage error" in rows["2"]
    assert rows["129 / 130 / 143"].startswith("interrupted")
