"""Conformance kits for plugins: targets, passes and models.

A plugin proves it meets the contract by subclassing a kit in its own tests::

    from edgest.testing import ModelConformance, PassConformance, TargetConformance

    class TestMyTarget(TargetConformance):
        target_name = "mytarget"

    class TestMyPass(PassConformance):
        pass_name = "my-pass"
        pass_options = {"tolerance": 1e-3}

    class TestMyModel(ModelConformance):
        model_name = "my_model_tiny"

Set ``plugin = "my_package.plugin"`` on a kit to test the plugin module without installing its
distribution (it is added to a fresh plugin manager beside edgest's built-ins); leave it None to
test what is installed. pytest collects the inherited tests; the fixtures and markers come
from the ``edgest.testing.plugin`` pytest plugin (``pytest11`` entry point), loaded automatically.
"""

from edgest.testing.model_kit import ModelConformance
from edgest.testing.pass_kit import PassConformance
from edgest.testing.suite import TargetConformance, tiny_convnet

__all__ = ["ModelConformance", "PassConformance", "TargetConformance", "tiny_convnet"]
