"""On-device bundles: an artifact plus everything needed to check it with only its runtime installed."""

from edgest.bundle.build import build_bundle
from edgest.bundle.merge import merge_device_reports

__all__ = ["build_bundle", "merge_device_reports"]
