"""--config FILE: TOML keys are the command's long options; unknown keys refused; flags override; the CI gate."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from edgest.cli import bench_cmd, compile_cmd
from edgest.config import read_config
from edgest.errors import BadInput

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci-bench.toml"
_ENV_DROP = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "EDGEST_LOAD_PLUGINS", "EDGEST_DISABLE_PLUGIN_AUTOLOAD")


def _edgest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    return subprocess.run([sys.executable, "-m", "edgest", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_keys_map_one_to_one_onto_options(tmp_path: Path) -> None:
    path = _write(tmp_path, 'models = ["a", "b"]\ntargets = "onnx"\npass = ["attention-to-conv"]\nno_cache = true\n'
                            'max-latency-ms = { onnx = 20, executorch = 30 }\nweights = { a = "w.pt" }\nsamples = 2\n')
    defaults, sha = read_config(path, bench_cmd)
    assert defaults == {"models": "a,b", "targets": "onnx", "passes": ["attention-to-conv"], "no_cache": True,
                        "max_latency_ms": "onnx=20,executorch=30", "weights": ["a=w.pt"], "samples": 2}
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    flags, _ = read_config(_write(tmp_path, 'target-option = ["opset=17"]\njson = true\n'), compile_cmd)
    assert flags == {"target_option": ["opset=17"], "as_json": True}


@pytest.mark.parametrize("text, words", [
    ('model = "squeezetime_tiny"\n', ("unknown key 'model' for edgest bench", "did you mean 'models'?", "keys are", "max-latency-ms")),
    ("no-cache = 1\n", ("'no-cache' is a flag", "no-cache = true")),
    ('models = "a"\nmodels = "b"\n', ("not valid TOML", "fix the file")),
    ('models = "a"\n[threads]\nx = [[1]]\n', ("nested array or table",)),
    ('models = "a"\nsamples = 1979-05-27\n', ("key 'samples' holds a TOML date or time",)),  # the outside round: a traceback
    ('models = "a"\n[out]\nx = 1\n', ("key 'out' takes one value, not a table", "above every [table] header")),  # ran into 'x=1/'
    ('models = "a"\nsamples = [1, 2]\n', ("key 'samples' takes one value, not an array; write samples = VALUE",)),
])
def test_bad_files_are_refused_with_the_fix(tmp_path: Path, text: str, words: tuple[str, ...]) -> None:
    with pytest.raises(BadInput) as err:
        read_config(_write(tmp_path, text), bench_cmd)
    for w in words:
        assert w in str(err.value), str(err.value)
    with pytest.raises(BadInput, match="cannot read config .*pass --config an existing TOML file"):
        read_config(tmp_path / "missing.toml", bench_cmd)


def test_command_line_overrides_the_file_and_the_cli_says_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'models = "squeezetime_tiny"\ntargets = "eager"\nprecisions = "int8"\n')
    seen = {}

    @click.command()
    @click.option("--models", required=True)
    @click.option("--precisions", default="fp32")
    @click.option("--targets")
    def probe(models: str, precisions: str, targets: str) -> None:
        seen.update(models=models, precisions=precisions, targets=targets)

    from edgest.config import config_option

    config_option(probe).main(["--config", str(path), "--precisions", "fp16"], standalone_mode=False)
    assert seen == {"models": "squeezetime_tiny", "precisions": "fp16", "targets": "eager"}  # flag over file over default

    proc = _edgest(tmp_path, "bench", "--config", "c.toml")  # eager lacks int8: refused before any cell, one line
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "int8" in proc.stderr, proc.stderr
    proc = _edgest(tmp_path, "compile", "--config", "c.toml")
    assert proc.returncode == 2 and "unknown key 'models' for edgest compile; did you mean 'model'?" in proc.stderr, proc.stderr


@pytest.mark.slow  # two cells compiled and timed (the onnx gate and its eager reference): ~30 s quiet, ~60 s loaded
def test_the_ci_bench_config_gates_and_a_tightened_budget_fails(tmp_path: Path) -> None:
    shutil.copy(CI, tmp_path / "ci-bench.toml")
    ok = _edgest(tmp_path, "bench", "--config", "ci-bench.toml", "--out", "tmp", "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["settings"]["config"] == {"path": "ci-bench.toml",
                                         "sha256": hashlib.sha256(CI.read_bytes()).hexdigest()}
    assert doc["settings"]["samples"] == 2 and doc["settings"]["budget"]["max_latency_ms"] == {"onnx": 50.0}
    assert [(c["model"], c["target"], c["status"]) for c in doc["cells"] if c.get("in_matrix", True)] == [
        ("squeezetime_tiny", "onnx", "passed")]
    assert not (tmp_path / "edgest-ci-bench").exists()  # --out on the command line beat the file's out

    tight = _edgest(tmp_path, "bench", "--config", "ci-bench.toml", "--out", "tmp", "--min-sqnr", "1000")
    assert tight.returncode == 1, tight.stderr
    assert "edgest: over budget: squeezetime_tiny / onnx / fp32: SQNR" in tight.stderr and "< 1000 dB" in tight.stderr


def test_a_fraction_for_a_whole_number_is_refused_not_rounded(tmp_path: Path, capsys, monkeypatch) -> None:
    from edgest.cli import main

    monkeypatch.setattr("edgest.interrupts.install", lambda: None)
    path = _write(tmp_path, 'model = "squeezetime_tiny"\ntarget = "eager"\nsamples = 8.5\n')  # was taken as 8
    with pytest.raises(SystemExit) as exit_:
        main(["compile", "--config", str(path), "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2 and "'8.5' is not a valid integer" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
