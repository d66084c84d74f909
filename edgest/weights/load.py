"""Load a weights file into a model: read safely, pick the format, map and adapt, check, load, record.

Nothing is loaded unless everything fits: every model tensor comes from the file or is left at
init by the format's design (a backbone-only pretrain's head, ViViT's temporal encoder), every
shape and dtype kind agrees, and every value is finite. The return value is the provenance
record (:class:`~edgest.weights.provenance.WeightsRecord` as a dict) that the report keeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput
from edgest.weights.base import Adapted, FormatMismatch
from edgest.weights.files import read_checkpoint
from edgest.weights.formats import NATIVE, choose, parse_format
from edgest.weights.provenance import WeightsRecord

if TYPE_CHECKING:
    import torch


def mismatches(own: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """Missing, unexpected, shape- and dtype-mismatched keys of ``state`` against the model's ``own`` state_dict."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if state[k].shape != own[k].shape)
    dtypes = sorted(f"{k} {str(state[k].dtype).removeprefix('torch.')} vs {str(own[k].dtype).removeprefix('torch.')}"
                    for k in set(own) & set(state) if state[k].is_floating_point() != own[k].is_floating_point())
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes), ("dtype mismatch", dtypes)):
        if keys:
            more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
            problems.append(f"{label}: {', '.join(keys[:5])}{more}")
    return problems


def family_of(model: torch.nn.Module) -> str:
    """The zoo family a model class comes from (``edgest_models.squeezetime`` -> ``squeezetime``), else ``""``."""
    module = type(model).__module__
    return module.split(".")[1] if module.startswith("edgest_models.") else ""


def _adapt(choice: Any, model: torch.nn.Module, options: dict[str, str], where: str) -> Adapted:
    plan = choice.plan
    targets = list(plan.renamed.values())
    if len(set(targets)) != len(targets):
        twice = sorted({t for t in targets if targets.count(t) > 1})
        raise BadInput(f"{where} hold two tensors for {', '.join(twice[:3])} (e.g. with and without a prefix); keep one copy")
    if choice.format is NATIVE:  # the model's own names, a common wrapper prefix stripped; unknown keys kept as they are
        return Adapted({plan.renamed.get(k, k): v for k, v in plan.state.items()})
    try:
        return choice.format.adapt(plan, model, options)
    except FormatMismatch as exc:
        raise BadInput(f"{where} do not match the model: {exc}") from None


def _check(adapted: Adapted, own: dict[str, Any], where: str) -> None:
    expected = {k: v for k, v in own.items() if k not in adapted.left_at_init}
    problems = mismatches(expected, adapted.state)
    if problems:
        raise BadInput(f"{where} do not match the model: {'; '.join(problems)}; check that they were saved from this "
                       "model and config")
    from edgest.finite import tensors_problem

    nonfinite = tensors_problem(adapted.state.items())
    if nonfinite:
        raise BadInput(f"{where} hold {nonfinite}; retrain or re-export them")


def load_weights(model: torch.nn.Module, path: str | Path, *, family: str | None = None,
                 weights_format: str | None = None, model_name: str | None = None) -> dict[str, Any]:
    """Load ``path`` into ``model`` and return the provenance record (see :mod:`edgest.weights.provenance`).

    ``family`` (``ModelSpec.family``) says which release formats apply (default: from the model's
    class); ``weights_format`` forces one (``"timm-vit:inflate=average"``; None detects it).
    Raises :class:`~edgest.errors.BadInput` naming the file, and then ``model`` is unchanged.
    """
    fmt, options = parse_format(weights_format)
    ckpt = read_checkpoint(path)
    where = f"weights '{ckpt.path}'"
    own = model.state_dict()
    name = model_name or type(model).__name__
    choice = choose(ckpt.obj, family_of(model) if family is None else family, frozenset(own), fmt, where, name)
    adapted = _adapt(choice, model, options, where)
    _check(adapted, own, where)
    try:
        model.load_state_dict({**own, **adapted.state})
    except Exception as exc:  # noqa: BLE001 - e.g. a sparse or quantised tensor where the model has a dense one
        from edgest.capture import first_line

        raise BadInput(f"cannot load {where} into the model: {first_line(exc)[:200]}; "
                       "save a state_dict with torch.save(model.state_dict(), path)") from None
    plan = choice.plan
    return WeightsRecord(
        path=str(ckpt.path), sha256=ckpt.sha256, format=choice.format.name, container=ckpt.container, source=plan.source,
        loaded=tuple(adapted.state), renamed={k: v for k, v in plan.renamed.items() if k != v},
        resized=adapted.resized, skipped={**plan.skipped, **adapted.skipped}, left_at_init=adapted.left_at_init,
        dropped_objects=ckpt.dropped, notes=ckpt.notes + plan.notes + adapted.notes,
    ).to_dict()
