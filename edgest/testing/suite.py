"""The tests every target plugin inherits (see :mod:`edgest.testing`)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

import edgest
from edgest.checks.latency import LatencyConfig
from edgest.errors import EdgestError, TargetUnavailable, UnknownName
from edgest.plugins import Registry, new_plugin_manager
from edgest.target import Target

_FAST = LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)


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


class TargetConformance:
    """Subclass in a test module and set ``target_name`` (and ``target_options`` if needed)."""

    target_name: ClassVar[str]
    target_options: ClassVar[dict[str, Any]] = {}
    input_shape: ClassVar[tuple[int, ...]] = (1, 3, 16, 16)

    @pytest.fixture
    def registry(self) -> Registry:
        return new_plugin_manager().registry

    @pytest.fixture
    def target_cls(self, registry: Registry) -> type[Target]:
        return registry.target(self.target_name)

    @pytest.fixture
    def runnable(self, target_cls: type[Target]) -> type[Target]:
        reason = target_cls.unavailable_reason()
        if reason:
            pytest.skip(f"target '{self.target_name}' unavailable here: {reason}")
        return target_cls

    def test_registered_once_under_its_lowercase_name(self, registry: Registry, target_cls: type[Target]) -> None:
        assert target_cls.name == self.target_name
        assert re.fullmatch(r"[a-z][a-z0-9_\-]*", target_cls.name)
        assert registry.owners[("target", self.target_name)]

    def test_declares_its_contract(self, target_cls: type[Target]) -> None:
        assert issubclass(target_cls, Target)
        assert re.fullmatch(r"[a-z0-9]+", target_cls.artifact_format)
        assert "fp32" in target_cls.precisions
        versions = target_cls.toolchain_versions()
        assert set(target_cls.toolchain) <= set(versions) and "torch" in versions
        json.dumps(target_cls(**self.target_options).options)  # options must be JSON-able (they cross processes)

    def test_lower_run_and_accuracy(self, runnable: type[Target], registry: Registry, tmp_path: Path) -> None:
        report = edgest.compile(tiny_convnet(), self.target_name, input_shape=self.input_shape,
                                out_dir=tmp_path / "run", target_options=dict(self.target_options),
                                registry=registry, latency=_FAST, samples=8)
        assert report.status == "passed", report.error
        assert (tmp_path / "run" / report.artifact.path).exists()
        assert report.artifact.size_bytes > 0 and report.artifact.format == runnable.artifact_format
        acc = report.check("accuracy")
        assert acc.metrics["sqnr_db"] >= 40.0 and acc.metrics["top1_agreement"] == 1.0
        lat = report.check("latency")
        assert lat.metrics["p50_ms"] > 0 and lat.metrics["runs"] >= 3
        saved = json.loads((tmp_path / "run" / "report.json").read_text())
        assert saved["artifact"]["sha256"] == report.artifact.sha256

    def test_missing_runtime_is_unavailable_with_a_hint(self, target_cls: type[Target], monkeypatch: pytest.MonkeyPatch) -> None:
        if not target_cls.requires:
            pytest.skip(f"target '{self.target_name}' declares no required modules")
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in target_cls.requires else real(name, *a))
        reason = target_cls.unavailable_reason()
        assert reason and target_cls.requires[0] in reason
        with pytest.raises(TargetUnavailable, match=f"target '{self.target_name}' unavailable"):
            target_cls(**self.target_options).ensure_available()

    def test_bad_input_raises_edgest_errors(self, runnable: type[Target], registry: Registry, tmp_path: Path) -> None:
        with pytest.raises(UnknownName):
            edgest.compile("no_such_model_xyz", self.target_name, out_dir=tmp_path / "a", registry=registry)
        with pytest.raises(EdgestError, match="cannot run on input"):
            edgest.compile(tiny_convnet(), self.target_name, input_shape=(1, 4, 16, 16), out_dir=tmp_path / "b",
                           target_options=dict(self.target_options), registry=registry, latency=None)
        assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
