"""The checkpoint formats edgest reads, ``--weights-format NAME[:option=value]``, and detection by structure.

Detection maps the file's keys with every format (:meth:`~edgest.weights.base.WeightsFormat.plan_keys`)
and takes the first format of the model's family that knows every key, then edgest's own. A file
that one format of another family knows entirely is named as that family's checkpoint; a file no
format knows entirely is refused naming the closest format and its first unknown keys, unless the
closest is edgest's own, whose load then lists the missing and unexpected keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgest.errors import BadInput
from edgest.weights.base import KeyPlan, WeightsFormat
from edgest.weights.emov2 import EMOv2Release
from edgest.weights.lmuformer import LMUFormerScript
from edgest.weights.native import Native
from edgest.weights.squeezetime import SqueezeTimeMMAction
from edgest.weights.timm_vit import TimmViT

NATIVE = Native()
#: every format, official releases first (detection prefers them), edgest's own last
FORMATS: tuple[WeightsFormat, ...] = (SqueezeTimeMMAction(), EMOv2Release(), LMUFormerScript(), TimmViT(), NATIVE)
#: unknown keys quoted in an error
QUOTED = 4


@dataclass(frozen=True)
class Choice:
    """The format a file is read with, and how its keys map."""

    format: WeightsFormat
    plan: KeyPlan


def names() -> list[str]:
    """Every format name, with its options: ``timm-vit[:inflate=central|average]``."""
    return [f.name + "".join(f"[:{k}={'|'.join(v)}]" for k, v in f.options.items()) for f in FORMATS]


def parse_format(text: str | None) -> tuple[WeightsFormat | None, dict[str, str]]:
    """``None``/``"auto"`` -> detect; ``"NAME[:key=value,...]"`` -> the format and its checked options."""
    if text is None or text.strip() in ("", "auto"):
        return None, {}
    name, _, rest = text.strip().partition(":")
    fmt = next((f for f in FORMATS if f.name == name), None)
    if fmt is None:
        raise BadInput(f"unknown weights format '{name}'; available: auto, {', '.join(names())}")
    options: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        allowed = fmt.options.get(key.strip())
        if not eq or allowed is None or value.strip() not in allowed:
            offered = ", ".join(f"{k}={'|'.join(v)}" for k, v in fmt.options.items()) or "none"
            raise BadInput(f"bad option '{item}' for weights format '{name}'; its options: {offered}")
        options[key.strip()] = value.strip()
    return fmt, options


def canonical(text: str | None) -> str | None:
    """The checked ``--weights-format`` text (None for auto); BadInput naming the problem."""
    fmt, options = parse_format(text)
    return None if fmt is None else fmt.name + (":" + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _unrecognised(where: str, plan: KeyPlan | None, fmt: WeightsFormat | None, model: str) -> BadInput:
    keys = list(plan.unmapped if plan else ())
    more = f" (+{len(keys) - QUOTED} more)" if len(keys) > QUOTED else ""
    closest = (f"the closest is {fmt.name} ({len(plan.renamed) + len(plan.skipped)} of {len(plan.state)} tensors known); "
               if fmt and plan and plan.coverage else "no format knows its keys; ")
    return BadInput(f"{where} are in no format edgest reads for model '{model}': {closest}first unmapped keys: "
                    f"{', '.join(keys[:QUOTED])}{more}; check the file is for this model, or force a format with "
                    f"--weights-format ({', '.join(f.name for f in FORMATS)})")


def _forced(fmt: WeightsFormat, plans: dict[str, KeyPlan], family: str, where: str, model: str) -> Choice:
    if fmt.family and family and fmt.family != family:
        own = [f.name for f in FORMATS if f.family in ("", family)]
        raise BadInput(f"--weights-format {fmt.name} is for {fmt.family} models, and model '{model}' is {family}; "
                       f"use one of: auto, {', '.join(own)}")
    plan = plans.get(fmt.name)
    if plan is None:
        where_kept = ", ".join(w or "top level" for w in fmt.wrappers)
        raise BadInput(f"{where} hold no state dict of tensors where format {fmt.name} keeps one ({where_kept}); "
                       "check the file, or let edgest detect the format")
    if plan.unmapped and fmt is not NATIVE:
        raise _unrecognised(where, plan, fmt, model)
    return Choice(fmt, plan)


def choose(obj: Any, family: str, model_keys: frozenset[str], forced: WeightsFormat | None, where: str,
           model: str) -> Choice:
    """The format to read ``obj`` (a checkpoint's contents) with for a model of ``family``; BadInput if none fits.

    ``where`` names the file in messages (``weights 'x.pth'``), ``model`` the model.
    """
    plans = {f.name: p for f in FORMATS if (p := f.plan_keys(obj, model_keys)) is not None}
    if forced is not None:
        return _forced(forced, plans, family, where, model)
    fits = [f for f in FORMATS if f.name in plans and not plans[f.name].unmapped and plans[f.name].renamed]
    own = [f for f in fits if f.family in ("", family)]
    if own:
        return Choice(own[0], plans[own[0].name])
    if fits:
        other = fits[0]
        raise BadInput(f"{where} are {_article(other.family)} {other.family} checkpoint ({other.name} format), and model "
                       f"'{model}' is {_article(family or 'user')} {family or 'user'} model; pass weights for this model, "
                       f"or compile a {other.family} model")
    if not plans:
        raise BadInput(f"{where} is not a state_dict of tensors; save one with torch.save(model.state_dict(), path)")
    best = max((f for f in FORMATS if f.name in plans),
               key=lambda f: (plans[f.name].coverage, f.family in ("", family)))
    if NATIVE.name in plans and (best is NATIVE or not plans[best.name].coverage):
        return Choice(NATIVE, plans[NATIVE.name])
    raise _unrecognised(where, plans[best.name], best, model)
