"""Model options: variants of a registered model, by ``--model-option KEY=VALUE`` or by ``--input-shape``.

A model's options are the keys of its registered ``ModelSpec.config`` (the keyword arguments its
factory is called with), each typed by its registered value: an int stays an int, a float a
float, a bool a bool, a tuple a tuple of the same element type (``depths=3,3,13,3``). One table,
no second declaration: the config is the model's option table. Registered numbers are positive,
so given ones must be too.

:func:`resolve` turns the options, and what an input shape implies through the entry's
``shape_options`` (:meth:`edgest.model.ModelEntry.options_for_shape`), into the spec a plan
compiles: its ``config`` is what :meth:`~edgest.model.ModelEntry.build` gets, its input shape
and ``num_classes`` follow the config. A changed config is built once on the meta device so a
variant the family cannot build is refused before any work, in one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput
from edgest.options import Text
from edgest.records import InputSpec, ModelSpec

if TYPE_CHECKING:
    import torch

    from edgest.model import ModelEntry

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _kind(value: Any) -> str:
    return "true or false" if isinstance(value, bool) else "a positive integer" if isinstance(value, int) \
        else "a positive number" if isinstance(value, float) else "text"


def _scalar(registered: Any, value: Any, where: str) -> Any:
    """``value`` as the type of ``registered`` (text converted), or BadInput naming ``where``."""
    if isinstance(value, Text) and not isinstance(registered, str):
        text = value.strip().lower()
        if isinstance(registered, bool):
            value = text in _TRUE if text in _TRUE + _FALSE else value
        else:
            try:
                value = type(registered)(text)
            except ValueError:
                pass
    if isinstance(registered, bool) != isinstance(value, bool):
        ok = False
    elif isinstance(registered, float):
        ok = isinstance(value, (int, float)) and math.isfinite(value) and (value > 0 or registered <= 0)
        value = float(value) if ok else value
    elif isinstance(registered, int) and not isinstance(registered, bool):
        ok = isinstance(value, int) and (value > 0 or registered <= 0)
    else:
        ok = isinstance(value, type(registered))
    if not ok:
        raise BadInput(f"{where} must be {_kind(registered)}, not {str(value)!r}; the registered value is {registered}")
    return str(value) if isinstance(value, str) else value


def typed_value(model: str, key: str, registered: Any, value: Any) -> Any:
    """``value`` for option ``key`` of ``model``, typed like its registered value (a tuple element by element)."""
    where = f"model '{model}' option {key}"
    if not isinstance(registered, (tuple, list)):
        return _scalar(registered, value, where)
    given = value
    if isinstance(value, Text):  # 1,1,2,1 or 1+1+2+1; [1,1,2,1] and (1,1,2,1) read the same
        text = value.strip()
        text = text[1:-1] if len(text) > 1 and (text[0], text[-1]) in (("[", "]"), ("(", ")")) else text
        value = [Text(v) for v in text.replace("+", ",").split(",") if v.strip()]
    if not isinstance(value, (tuple, list)) or not value:
        raise BadInput(f"{where} takes comma-separated values like {','.join(map(str, registered))}, not {str(given)!r}")
    first = registered[0] if registered else value[0]
    out = []
    for v in value:  # the element and the whole value: "[1,2" said only "not '[1'; the registered value is 1"
        try:
            out.append(_scalar(first, v, where))
        except BadInput:
            raise BadInput(f"{where} must be {_kind(first)}, not {str(v)!r}, in {str(given)!r}; write comma-separated "
                           f"values like {','.join(map(str, registered))}") from None
    return tuple(out)


def typed_options(entry: ModelEntry, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option checked against ``entry``'s config and typed; an unknown key lists the known ones."""
    from edgest.validate import did_you_mean

    config, out = entry.spec.config, {}
    for key, value in options.items():
        if key not in config:
            raise BadInput(f"model '{entry.name}' has no option '{key}'; available: "
                           f"{', '.join(config) or '(none)'}{did_you_mean(key, config)}")
        out[key] = typed_value(entry.name, key, config[key], value)
    return out


def describe_options(options: Mapping[str, Any]) -> str:
    """``num_frames=8, depths=3,3,13,3``: options (or a whole config) on one line."""
    return ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in options.items())


def resolve(entry: ModelEntry, input_shape: tuple[int, ...] | None, options: Mapping[str, Any] | None) -> ModelSpec:
    """The spec to compile: ``entry``'s, with ``options`` and the options ``input_shape`` implies applied.

    ``input_shape`` must already have the spec's rank. An option given both ways with two values,
    or a config the family cannot build, is a one-line BadInput.
    """
    spec, given = entry.spec, typed_options(entry, options or {})
    implied = entry.options_for_shape(input_shape) if input_shape is not None else {}
    for key in given.keys() & implied.keys():
        if given[key] != implied[key]:
            raise BadInput(f"input shape {'x'.join(map(str, input_shape or ()))} means {key}={implied[key]}, but "
                           f"--model-option gives {key}={given[key]}; give one of them")
    config = {**spec.config, **implied, **given}
    shape = tuple(input_shape) if input_shape is not None else entry.input_shape_for(config)
    if config == spec.config:
        return spec if shape == spec.input.shape else replace(spec, input=replace(spec.input, shape=shape))
    changed = {k: v for k, v in config.items() if spec.config.get(k) != v}
    resolved = replace(spec, config=config, input=InputSpec(shape, spec.input.dtype, spec.input.layout),
                       num_classes=int(config.get("num_classes", spec.num_classes)))
    check_builds(entry, resolved, changed, from_shape=sorted(set(changed) & set(implied) - set(given)))
    return resolved


def check_builds(entry: ModelEntry, spec: ModelSpec, changed: Mapping[str, Any], from_shape: Sequence[str] = ()) -> None:
    """Build ``spec.config`` on the meta device (on the CPU if the factory cannot build there); BadInput
    naming the changed options if the family refuses it."""
    import torch

    try:
        with torch.device("meta"):
            meta = entry.build(spec.config)
    except Exception:  # noqa: BLE001 - refused, or a factory that needs real tensors (.item()): the CPU says which
        pass
    else:
        _check_weights_fit(entry.name, meta, changed)
        return
    try:
        entry.build(spec.config)
    except Exception as exc:  # noqa: BLE001 - the family's own check (ValueError) or any failure to build
        from edgest.capture import first_line

        why = first_line(exc)[:300] or type(exc).__name__
        note = f" (from input shape {'x'.join(map(str, spec.input.shape))})" if from_shape else ""
        fix = "" if ";" in why else f"; give other values for {', '.join(changed)}"
        raise BadInput(f"model '{entry.name}' cannot be built with {describe_options(changed)}{note}: {why}{fix}") from None


def parse_items(items: Sequence[str], models: Mapping[str, ModelEntry | None],
                flag: str = "--model-option") -> dict[str, dict[str, Any]]:
    """``["num_frames=8", "squeezetime:num_classes=600"]`` → each model's options (values still text).

    ``MODEL:KEY=VALUE`` applies to that model only; ``KEY=VALUE`` to every model whose config has
    ``KEY`` (with one model: to it, so that an unknown key is refused with its alternatives; its
    entry may then be None, for a user's model file, which :func:`edgest.plan.plan` refuses).
    """
    out: dict[str, dict[str, Any]] = {name: {} for name in models}
    for item in items:
        head, eq, text = item.partition("=")
        scope, colon, key = head.rpartition(":")
        key, scope = key.strip(), scope.strip()
        if not eq or not key or (colon and not scope):
            raise BadInput(f"malformed {flag} '{item}'; write KEY=VALUE or MODEL:KEY=VALUE")
        if scope and scope not in models:
            from edgest.validate import did_you_mean

            raise BadInput(f"{flag} '{item}' names model '{scope}', which is not being compiled "
                           f"({', '.join(models)}){did_you_mean(scope, models) or '; write MODEL:KEY=VALUE with one of them'}")
        chosen = [scope] if scope else [n for n, e in models.items() if len(models) == 1 or (e and key in e.spec.config)]
        if not chosen:
            among = ", ".join(models) if len(models) <= 6 else f"the {len(models)} models"
            raise BadInput(f"no model among {among} has an option '{key}'; a model's options are its config keys "
                           f"(edgest list models NAME shows them)")
        for name in chosen:
            out[name][key] = Text(text.strip())
    return out


def typed_for(models: Mapping[str, ModelEntry], options: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each model's options typed and checked to build (BadInput before any work), without empty entries."""
    out = {}
    for name, opts in options.items():
        if opts:
            spec = resolve(models[name], None, opts)
            out[name] = {k: spec.config[k] for k in opts}
    return out


def compiled_stats(model: ModelEntry | torch.nn.Module, spec: ModelSpec, module: torch.nn.Module | None = None) -> dict[str, int]:
    """Parameters and MACs of what was compiled: a registered model's resolved config on the meta device, a
    user's module by one forward pass on zeros; ``{}`` when they cannot be counted (never fails a compile)."""
    import torch

    from edgest.model import ModelEntry, count_macs, count_params, model_stats

    if isinstance(model, ModelEntry):
        try:
            return model_stats(model, spec)
        except Exception:  # noqa: BLE001 - a factory that cannot build on the meta device: count the real module
            pass
    module = module if module is not None else model
    try:
        return {"params": count_params(module), "macs": int(count_macs(module, torch.zeros(spec.input.shape)))}
    except Exception:  # noqa: BLE001 - counting is a report figure, not a check
        return {}


def _check_weights_fit(name: str, meta: Any, changed: Mapping[str, Any]) -> None:
    """BadInput when the weights of ``meta`` (built on the meta device) alone exceed the memory available: the real
    build would ask the allocator for them and die with a traceback (num_frames=1e9: terabytes of position table)."""
    from edgest.resources import available_memory, fmt_bytes, weight_bytes

    available = available_memory()
    need = weight_bytes(meta) if hasattr(meta, "parameters") else 0
    if available is not None and need > available:
        raise BadInput(f"model '{name}' with {describe_options(changed)} has ~{fmt_bytes(need)} of weights, more than the "
                       f"{fmt_bytes(available)} of memory available; give smaller values for {', '.join(changed)}")
