"""Every first-party target runs the conformance suite it ships to third parties."""

from __future__ import annotations

from edgest.testing import TargetConformance


class TestEagerConformance(TargetConformance):
    target_name = "eager"


class TestOnnxConformance(TargetConformance):
    target_name = "onnx"
