"""`edgest list` stays quick on a cold cache: it never builds a model (no torch) unless asked for figures.

Parameters and MACs are measured on request (`--stats`, a model NAME) and cached per user, keyed by
the model's spec and its factory's source; a plain listing shows what is cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from edgest.inventory import stats_key
from edgest.plugins import get_registry
from edgest.records import InputSpec

_ENV_DROP = ("EDGEST_LOAD_PLUGINS", "EDGEST_DISABLE_PLUGIN_AUTOLOAD", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def _env(cache: Path) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in _ENV_DROP}, "XDG_CACHE_HOME": str(cache)}


def _python(cache: Path, code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], env=_env(cache), capture_output=True, text=True, check=True,
                          timeout=300).stdout


def _edgest(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgest", *args], env=_env(cache), capture_output=True, text=True,
                          timeout=300)


LIST_ALL = ("import sys, json; from edgest.inventory import inventory; "
            "data = inventory(['models', 'targets', 'passes', 'plugins']); "
            "print(json.dumps({'torch': 'torch' in sys.modules, "
            "'models': {r['name']: [r['params'], r['macs']] for r in data['models']}}))")


def test_a_cold_listing_builds_no_model_and_says_how_to_measure(tmp_path: Path) -> None:
    cold = json.loads(_python(tmp_path, LIST_ALL))
    assert cold["torch"] is False  # what made `edgest list` take 8-30 s: torch and a build per model
    assert cold["models"]["squeezetime_tiny"] == [None, None] and len(cold["models"]) > 10
    proc = _edgest(tmp_path, "list")
    assert proc.returncode == 0, proc.stderr
    assert "squeezetime_tiny" in proc.stdout and "edgest list models --stats" in proc.stderr
    assert not (tmp_path / "edgest").exists()  # nothing measured, nothing written


def test_a_named_model_is_measured_once_then_listed_from_the_cache(tmp_path: Path) -> None:
    named = _edgest(tmp_path, "list", "models", "squeezetime_tiny", "--json")
    assert named.returncode == 0, named.stderr
    row = json.loads(named.stdout)["models"][0]
    assert row["name"] == "squeezetime_tiny" and row["params"] == 248_650 and row["macs"] > 1e7
    cache = json.loads((tmp_path / "edgest" / "model-stats.json").read_text())
    assert [v["model"] for v in cache.values()] == ["squeezetime_tiny"]
    warm = json.loads(_python(tmp_path, LIST_ALL))
    assert warm["torch"] is False and warm["models"]["squeezetime_tiny"] == [248_650, row["macs"]]
    assert warm["models"]["squeezetime"] == [None, None]  # only what was measured


def test_the_cache_key_follows_the_spec_and_the_source() -> None:
    entry = get_registry().model("squeezetime_tiny")
    key = stats_key(entry, entry.spec)
    assert key is not None and key == stats_key(entry, entry.spec)
    wider = replace(entry.spec, input=InputSpec((1, 3, 16, 64, 64), entry.spec.input.dtype, entry.spec.input.layout))
    assert stats_key(entry, wider) != key
    other = get_registry().model("vivit_fe_tiny")  # another factory module
    assert stats_key(replace(entry, factory=other.factory), entry.spec) != key


def test_a_home_that_does_not_exist_is_not_created_for_the_cache(tmp_path, monkeypatch) -> None:
    from edgest import inventory

    home = tmp_path / "no-such-home"  # the outside round's x04: /nonexistent/home/.cache/edgest appeared
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    cache = inventory._StatsCache()
    cache.entries, cache.dirty = {"k": {"params": 1, "macs": 1}}, True
    cache.save()
    assert not home.exists()
