"""What makes a registered model, pass or target valid: checked when a plugin registers it.

The plugin manager asks :func:`problem` about everything a plugin's ``register_*`` hooks hand
over; one answer other than None skips the whole plugin with that reason. Only what can be
seen without importing a toolchain or building a model is checked here (types, names, declared
fields); what needs running (lowering, building, quantising) is the conformance kits' job
(:mod:`edgest.testing`). Imports nothing heavy: it runs on every start-up.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from edgest.options import table_problem

#: target and pass names: lowercase, digits, ``_`` and ``-``
NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")
#: model names: lowercase, digits and ``_`` (they are also Python function names in a zoo)
MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FORMAT = re.compile(r"^[a-z0-9]+$")


def _strs(value: Any) -> bool:
    return isinstance(value, tuple) and all(isinstance(v, str) and v for v in value)


def _class_problem(obj: Any, base: type, kind: str) -> str | None:
    """Type, name, abstract methods and option table: what targets and passes share."""
    if not (isinstance(obj, type) and issubclass(obj, base)):
        return f"registered {obj!r} as a {kind}, but it is not a subclass of edgest.{base.__name__}"
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not NAME.match(name):
        return (f"{kind} class {obj.__name__} has no valid name (got {name!r}); set the class attribute "
                f"name = 'lowercase-name' ([a-z][a-z0-9_-]*)")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(obj.__abstractmethods__))
        return f"{kind} '{name}' ({obj.__name__}) does not implement {missing}"
    if not isinstance(getattr(obj, "description", ""), str):
        return f"{kind} '{name}': description must be a str"
    bad_table = table_problem(getattr(obj, "option_table", {}))
    return f"{kind} '{name}': {bad_table}" if bad_table else None


def _target_problem(cls: Any) -> str | None:
    from edgest.target import Target

    found = _class_problem(cls, Target, "target")
    if found:
        return found
    where = f"target '{cls.name}' ({cls.__name__})"
    fmt = getattr(cls, "artifact_format", None)
    if not isinstance(fmt, str) or not _FORMAT.match(fmt):
        return f"{where} has no valid artifact_format (got {fmt!r}); set e.g. artifact_format = 'onnx'"
    for attr in ("precisions", "requires", "toolchain"):
        if not _strs(getattr(cls, attr)):
            return f"{where}: {attr} must be a tuple of non-empty strings, not {getattr(cls, attr)!r}"
    if not cls.precisions or cls.default_precision not in cls.precisions:
        return f"{where}: default_precision {cls.default_precision!r} is not among precisions {cls.precisions!r}"
    if not isinstance(cls.install_hint, str):
        return f"{where}: install_hint must be a str"
    if not isinstance(getattr(cls, "device_runner", ""), str):
        return f"{where}: device_runner must be a dotted module name (str)"
    reqs = getattr(cls, "runtime_requirements", ())
    if not (isinstance(reqs, tuple) and all(_strs(r) for r in reqs)):
        return f"{where}: runtime_requirements must be a tuple of pip argument tuples, not {reqs!r}"
    return None


def _pass_problem(cls: Any) -> str | None:
    from edgest.passes.base import Pass

    return _class_problem(cls, Pass, "pass")


def _model_problem(entry: Any) -> str | None:
    from edgest.model import ModelEntry
    from edgest.records import InputSpec, ModelSpec

    if not isinstance(entry, ModelEntry):
        return f"registered {entry!r} as a model, but it is not an edgest.ModelEntry(spec, factory)"
    spec = entry.spec
    if not isinstance(spec, ModelSpec):
        return f"model entry {entry!r}: spec must be an edgest.ModelSpec"
    name = spec.name
    if not isinstance(name, str) or not MODEL_NAME.match(name):
        return f"model name {name!r} must be lowercase [a-z][a-z0-9_]*"
    shape = spec.input.shape if isinstance(spec.input, InputSpec) else None
    if not (isinstance(shape, tuple) and shape and all(isinstance(d, int) and d > 0 for d in shape)):
        return f"model '{name}': input must be an edgest.InputSpec with a tuple of positive ints as shape, not {spec.input!r}"
    layout = spec.input.layout
    if layout and len(layout.split(",")) != len(shape):
        return f"model '{name}': layout '{layout}' names {len(layout.split(','))} dims, shape has {len(shape)}"
    if not isinstance(spec.num_classes, int) or isinstance(spec.num_classes, bool) or spec.num_classes < 0:
        return f"model '{name}': num_classes must be an int >= 0 (0: not a classifier), not {spec.num_classes!r}"
    if not isinstance(spec.family, str) or not spec.family or not isinstance(spec.config, dict):
        return f"model '{name}': family must be a non-empty str and config a dict"
    factory = entry.factory
    if not callable(factory) and not (isinstance(factory, str) and re.fullmatch(r"[\w.]+:\w+", factory)):
        return f"model '{name}': factory must be a callable or a 'module:function' string, not {factory!r}"
    return None


_CHECKS = {"model": _model_problem, "pass": _pass_problem, "target": _target_problem}


def problem(kind: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be registered as a ``kind`` (``model``, ``pass``, ``target``), or None."""
    return _CHECKS[kind](obj)


def registered_name(kind: str, obj: Any) -> str:
    """The name ``obj`` registers under (call only after :func:`problem` said None)."""
    return obj.spec.name if kind == "model" else obj.name
