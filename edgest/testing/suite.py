"""The tests every target plugin inherits (:class:`TargetConformance`; see :mod:`edgest.testing`).

Each test names the rule it checks in its failure message. What is checked:

* registration: a valid, lowercase name, registered once, by a plugin edgest loads cleanly;
* declarations: format, precisions that truly work (``int8`` only with a quantizer, fp16/bf16
  accepted as the ``precision`` option), an install hint when ``requires`` lists anything, and
  ``runtime_modules`` (what the check process imports) taken from ``requires``;
* importing the plugin imports none of the target's toolchain (nor torch): a fresh interpreter
  looks at ``sys.modules``;
* the device runner (``device_runner``), loaded alone from its file as a bundle does, with edgest
  and the plugin's own package unimportable, defines ``load(path, threads)``;
* availability: a target that is unavailable although its toolchain is installed, or whose
  ``requires`` is one edit from an importable module, FAILS (a misspelt ``requires``); one whose
  runtime is simply not installed here skips, with the reason;
* lower → run → accuracy and latency on a tiny model through ``edgest.compile``, with 2 threads,
  which must reach the runner;
* the runner, loaded in a fresh process as the checks load it (a runtime's thread pools, CPU
  affinity or crash stay there): ``threads`` (an int), ``run`` returning a list of arrays;
* errors: unknown names and bad input are edgest errors, and whatever the plugin's own code
  raises for bad input (a missing artifact, no inputs) is an ``edgest.EdgestError``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

import edgest
from edgest.checks.latency import LatencyConfig
from edgest.errors import EdgestError, TargetUnavailable, UnknownName
from edgest.plugins import PluginManager, Registry
from edgest.registration import NAME
from edgest.registration import problem as registration_problem
from edgest.target import Target
from edgest.testing.probes import (
    KitFixtures,
    LIGHT, imported_by, owner_module, requires_typo, standalone_device_runner,
)

_FAST = LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)
#: threads the compile asks for: not the default (1), so a target that ignores them shows
THREADS = 2


def tiny_convnet() -> Any:
    """A 2-D conv classifier small enough for every runtime: (1, 3, 16, 16) → (1, 5)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    ).eval()


class TargetConformance(KitFixtures):
    """Subclass in a test module and set ``target_name`` (and ``target_options``, ``plugin`` if needed).

    ``plugin`` (``"pkg.module"``) adds that module as the only plugin besides edgest's built-ins,
    so a plugin is tested without installing its distribution; None tests the installed plugins.
    """

    target_name: ClassVar[str]
    target_options: ClassVar[dict[str, Any]] = {}
    input_shape: ClassVar[tuple[int, ...]] = (1, 3, 16, 16)
    plugin: ClassVar[str | None] = None

    @pytest.fixture(scope="class")
    @classmethod
    def target_cls(cls, registry: Registry, plugin_manager: PluginManager) -> type[Target]:
        try:
            return registry.target(cls.target_name)
        except UnknownName as exc:
            pytest.fail(f"{exc}; plugin problems: {'; '.join(plugin_manager.load_errors) or 'none'}")

    @pytest.fixture(scope="class")
    @classmethod
    def runnable(cls, target_cls: type[Target]) -> type[Target]:
        reason = target_cls.unavailable_reason()
        if reason:
            pytest.skip(f"target '{cls.target_name}' unavailable here: {reason}")
        return target_cls

    @pytest.fixture(scope="class")
    @classmethod
    def lowered(cls, runnable: type[Target], tmp_path_factory: pytest.TempPathFactory) -> tuple[Target, Path, Any]:
        """The tiny model lowered by the target (no checks): the target, the artifact and one input."""
        import torch

        from edgest.capture import capture

        target = runnable(**cls.target_options)
        example = (torch.randn(cls.input_shape, generator=torch.Generator().manual_seed(0)),)
        program = capture(tiny_convnet(), example)
        out = tmp_path_factory.mktemp(f"lowered-{cls.target_name}")
        lowered = target.lower(program, example, out)
        assert lowered.path.exists() and out in (lowered.path, *lowered.path.parents), \
            f"lower must write its artifact inside out_dir ({out}), wrote {lowered.path}"
        return target, lowered.path, example[0].numpy()

    @pytest.fixture(scope="class")
    @classmethod
    def probe(cls, lowered: tuple[Target, Path, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
        """What the artifact's runner did in a fresh process (:mod:`edgest.testing.runner_probe`)."""
        import numpy as np

        target, path, example = lowered
        work = tmp_path_factory.mktemp(f"probe-{cls.target_name}")
        np.save(work / "input.npy", example)
        target_ref = f"{type(target).__module__}:{type(target).__qualname__}"
        (work / "request.json").write_text(json.dumps({"target": target_ref, "options": dict(target.options),
                                                       "artifact": str(path)}))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.run([sys.executable, "-m", "edgest.testing.runner_probe", str(work)], env=env,
                              capture_output=True, text=True, timeout=600)
        result = json.loads((work / "result.json").read_text()) if (work / "result.json").exists() else {}
        if result.get("unavailable"):
            pytest.skip(f"artifacts of '{cls.target_name}' cannot run here: {result['unavailable']}")
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            result["crash"] = f"the runner's process ended with code {proc.returncode}: {last[:300]}"
        return result

    def test_registered_once_under_its_lowercase_name(self, registry: Registry, target_cls: type[Target],
                                                      plugin_manager: PluginManager) -> None:
        assert target_cls.name == self.target_name
        assert NAME.fullmatch(target_cls.name)
        owner = registry.owners[("target", self.target_name)]
        assert plugin_manager.infos[owner].status == "loaded"
        assert registration_problem("target", target_cls) is None

    def test_declares_its_contract(self, target_cls: type[Target]) -> None:
        assert issubclass(target_cls, Target)
        assert re.fullmatch(r"[a-z0-9]+", target_cls.artifact_format)
        assert "fp32" in target_cls.precisions
        versions = target_cls.toolchain_versions()
        assert set(target_cls.toolchain) <= set(versions) and "torch" in versions
        json.dumps(target_cls(**self.target_options).options)  # options must be JSON-able (they cross processes)

    def test_declared_precisions_work(self, target_cls: type[Target]) -> None:
        from edgest.quantization import ArtifactQuantizer, ProgramQuantizer

        for precision in target_cls.precisions:
            if precision in ("fp16", "bf16"):  # reaches the target as its precision option
                target_cls(**{**self.target_options, "precision": precision})
            elif precision.startswith("int8"):
                quantizer = target_cls(**self.target_options).quantizer(precision)
                assert isinstance(quantizer, (ProgramQuantizer, ArtifactQuantizer)), (
                    f"precisions lists {precision} but quantizer({precision!r}) returned {quantizer!r}; return an "
                    "edgest.quantization.ProgramQuantizer or ArtifactQuantizer, or drop it from precisions")

    def test_says_how_to_install(self, target_cls: type[Target]) -> None:
        if target_cls.__module__.split(".")[0] == "edgest":  # the core's own targets need only edgest's dependencies
            return
        assert not target_cls.requires or target_cls.install_hint.strip(), (
            f"target '{self.target_name}' requires {', '.join(target_cls.requires)} but has no install_hint; "
            "set install_hint to the command that installs them (e.g. \"pip install edgest-mytarget\")")

    def test_runtime_modules_are_among_requires(self, target_cls: type[Target]) -> None:
        runtime = target_cls.runtime_modules
        extra = [m for m in runtime or () if m not in target_cls.requires]
        assert runtime is None or (isinstance(runtime, tuple) and not extra), (
            f"target '{self.target_name}' runtime_modules {runtime!r} must be a tuple of names from requires "
            f"({', '.join(target_cls.requires) or 'empty'}): the check process imports them, and requires is what "
            "makes the target available")

    def test_importing_the_plugin_loads_no_toolchain(self, target_cls: type[Target], plugin_manager: PluginManager) -> None:
        modules = [owner_module(plugin_manager, "target", self.target_name), target_cls.__module__]
        heavy = [m for m in (*target_cls.requires, "torch") if m.split(".")[0] not in LIGHT]
        loaded = imported_by(modules, heavy)
        assert not loaded, (f"importing {', '.join(dict.fromkeys(modules))} imports {', '.join(loaded)}; import the "
                            "toolchain inside lower/load/quantizer so that edgest starts fast and a missing "
                            "toolchain makes the target unavailable instead of breaking the plugin")

    def test_device_runner_needs_only_the_runtime(self, target_cls: type[Target]) -> None:
        if not target_cls.device_runner:
            pytest.skip(f"target '{self.target_name}' makes no device bundles (no device_runner)")
        problem, params = standalone_device_runner(target_cls.device_runner)
        assert problem is None, problem
        assert params is not None and params[:2] == ["path", "threads"], (
            f"device_runner '{target_cls.device_runner}' must define load(path: str, threads: int), not load({params})")
        assert all(isinstance(r, tuple) and all(isinstance(a, str) for a in r) for r in target_cls.runtime_requirements)

    def test_available_here(self, target_cls: type[Target]) -> None:
        reason = target_cls.unavailable_reason()
        if reason is None:
            return
        typo = requires_typo(target_cls.requires, target_cls.toolchain)
        assert typo is None, f"target '{self.target_name}' is unavailable ({reason}): {typo}"
        pytest.skip(f"target '{self.target_name}' unavailable here (its runtime is not installed): {reason}")

    def test_lower_run_and_accuracy(self, runnable: type[Target], registry: Registry, tmp_path: Path) -> None:
        report = edgest.compile(tiny_convnet(), self.target_name, input_shape=self.input_shape,
                                out_dir=tmp_path / "run", target_options=dict(self.target_options),
                                registry=registry, latency=_FAST, samples=8, threads=THREADS)
        assert report.status == "passed", report.error
        assert (tmp_path / "run" / report.artifact.path).exists()
        assert report.artifact.size_bytes > 0 and report.artifact.format == runnable.artifact_format
        acc = report.check("accuracy")
        assert acc.metrics["sqnr_db"] >= 40.0 and acc.metrics["top1_agreement"] == 1.0
        lat = report.check("latency")
        assert lat.metrics["p50_ms"] > 0 and lat.metrics["runs"] >= 3
        assert lat.metrics["threads"] in (THREADS, 0), (
            f"compiled with threads={THREADS}, the runner says threads={lat.metrics['threads']}: load(path, threads) "
            "must run the artifact with that many threads and say so in runner.threads (0: the runtime's choice)")
        saved = json.loads((tmp_path / "run" / "report.json").read_text())
        assert saved["artifact"]["sha256"] == report.artifact.sha256

    def test_runner_contract(self, probe: dict[str, Any]) -> None:
        assert "threads" in probe, probe.get("crash", probe)
        threads = probe["threads"]
        assert isinstance(threads, int), (
            f"the runner has no int attribute threads (got {threads}); set runner.threads to the threads it runs "
            "with (0: the runtime's choice)")
        assert threads in (1, 0), f"loaded with threads=1, the runner says threads={threads}"
        assert "outputs" in probe, probe.get("crash", probe)
        out = probe["outputs"]
        assert out["type"] == "list" and out["items"], f"run() must return a list of arrays, not {out['type']}"
        assert set(out["items"]) == {"ndarray"}, f"run() must return numpy arrays, not {out['items']}"
        assert tuple(out["shape0"]) == (self.input_shape[0], 5), out["shape0"]

    def test_bad_input_raises_edgest_errors(self, runnable: type[Target], registry: Registry, tmp_path: Path) -> None:
        with pytest.raises(UnknownName):
            edgest.compile("no_such_model_xyz", self.target_name, out_dir=tmp_path / "a", registry=registry)
        with pytest.raises(EdgestError, match="cannot run on input"):
            edgest.compile(tiny_convnet(), self.target_name, input_shape=(1, 4, 16, 16), out_dir=tmp_path / "b",
                           target_options=dict(self.target_options), registry=registry, latency=None)
        assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

    def test_runner_bad_input_raises_edgest_errors(self, probe: dict[str, Any]) -> None:
        for key, what in (("missing_load", "load() of an artifact that does not exist"), ("no_inputs", "run([]) with no inputs")):
            assert key in probe, f"{what}: {probe.get('crash', 'not reached')}"
            got = probe[key]
            if got["raised"] and not got["edgest"]:
                assert got["own"] is None, (
                    f"{what}: the plugin's own code ({got['own']}) raises {got['type']}: {got['message']}; raise "
                    "edgest.BadInput (bad input), edgest.TargetUnavailable (cannot run here) or another edgest error")

    def test_missing_runtime_is_unavailable_with_a_hint(self, target_cls: type[Target], monkeypatch: pytest.MonkeyPatch) -> None:
        if not target_cls.requires:
            pytest.skip(f"target '{self.target_name}' declares no required modules")
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in target_cls.requires else real(name, *a))
        reason = target_cls.unavailable_reason()
        assert reason and target_cls.requires[0] in reason
        assert target_cls.install_hint in reason
        with pytest.raises(TargetUnavailable, match=f"target '{self.target_name}' unavailable"):
            target_cls(**self.target_options).ensure_available()
