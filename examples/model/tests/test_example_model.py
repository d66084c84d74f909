"""The example model family passes edgest's model conformance kit, and compiles end to end."""

from __future__ import annotations

import edgest
from edgest.checks.latency import LatencyConfig
from edgest.testing import ModelConformance


class TestExampleVideoTiny(ModelConformance):
    model_name = "example_video_tiny"
    plugin = "edgest_example_model.plugin"


class TestExampleVideoSmall(ModelConformance):
    model_name = "example_video_small"
    plugin = "edgest_example_model.plugin"


def test_compiles_for_eager_with_another_input_shape(tmp_path) -> None:
    from edgest.plugins import new_plugin_manager
    from edgest_example_model import plugin

    pm = new_plugin_manager(entry_points=False)
    assert pm.add(plugin, "example-model") is None
    report = edgest.compile("example_video_tiny", "eager", input_shape=(2, 3, 4, 24, 24), out_dir=tmp_path / "run",
                            registry=pm.registry, samples=2, latency=LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0))
    assert report.status == "passed", report.error
    assert report.model.input.shape == (2, 3, 4, 24, 24) and report.model.num_classes == 10
