"""edgest: compile efficient video models for edge and mobile runtimes, and prove they are faithful.

Public API: :func:`compile`, :data:`hookimpl`, the records and the errors. Heavy modules are
imported on first use so that ``import edgest`` (and ``edgest --help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput, CheckFailed, EdgestError, PluginError, TargetUnavailable, UnknownName, Unsupported
from edgest.hookspecs import hookimpl
from edgest.records import SCHEMA_VERSION, Artifact, CheckResult, InputSpec, ModelSpec, PassRecord, Report

if TYPE_CHECKING:
    from edgest.checks.latency import LatencyConfig
    from edgest.host import cpu_capabilities, int8_sums_in_int32, isa_features
    from edgest.model import ModelEntry
    from edgest.passes.base import Pass, PassContext, PassResult
    from edgest.pipeline import compile
    from edgest.target import Lowered, Runner, Target

__version__ = "0.1.0"

_LAZY = {
    "compile": "edgest.pipeline",
    "LatencyConfig": "edgest.checks.latency",
    "ModelEntry": "edgest.model",
    "Pass": "edgest.passes.base",
    "PassContext": "edgest.passes.base",
    "PassResult": "edgest.passes.base",
    "Target": "edgest.target",
    "Lowered": "edgest.target",
    "Runner": "edgest.target",
    "isa_features": "edgest.host",
    "cpu_capabilities": "edgest.host",
    "int8_sums_in_int32": "edgest.host",
}

__all__ = [
    "SCHEMA_VERSION", "Artifact", "BadInput", "CheckFailed", "CheckResult", "EdgestError", "InputSpec",
    "LatencyConfig", "Lowered", "ModelEntry", "ModelSpec", "Pass", "PassContext", "PassRecord", "PassResult",
    "PluginError", "Report", "Runner", "Target", "TargetUnavailable", "UnknownName", "Unsupported",
    "compile", "cpu_capabilities", "hookimpl", "int8_sums_in_int32", "isa_features",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgest' has no attribute {name!r}")
