"""Conformance suite for target plugins.

A target plugin proves it meets the contract by subclassing :class:`TargetConformance` in its
own tests::

    from edgest.testing import TargetConformance

    class TestMyTarget(TargetConformance):
        target_name = "mytarget"

pytest collects the inherited tests: registration and name rules, lower → run → accuracy on a
tiny model, the unavailable-runtime behaviour, and error types. The fixtures come from the
``edgest.testing.plugin`` pytest plugin (``pytest11`` entry point), loaded automatically.
"""

from edgest.testing.suite import TargetConformance, tiny_convnet

__all__ = ["TargetConformance", "tiny_convnet"]
