"""A run folder back into a :class:`~edgest.plan.Plan`: the model, weights, target, precision and passes it compiled.

``report.json`` holds what the compile resolved: the model's spec (name, config, input shape),
the target, the precision, each pass with its options, the weights file and the accuracy check's
seed. A user's own model is not recorded (only its class name), so it is given again. Target
options other than the precision are not recorded either; pass them again when the run had any.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput, Unsupported

if TYPE_CHECKING:
    import torch

    from edgest.plan import Plan
    from edgest.plugins import Registry
    from edgest.records import Report


def _source(report: Report, run_dir: Path, model: str | torch.nn.Module | None) -> str | torch.nn.Module:
    if model is not None and report.model.family != "user":  # another model would be compared, and "pass"
        raise BadInput(f"run '{run_dir}' compiled the registered model '{report.model.name}', which edgest builds again "
                       "itself; --model (model=) is for a run of your own nn.Module: leave it out")
    if model is not None:
        return model
    if report.model.family == "user":
        raise BadInput(f"run '{run_dir}' compiled a user model ('{report.model.name}'), which report.json does not hold; "
                       "pass it again with --model FILE.py:CLASS (model=)")
    return report.model.name


def rebuild_plan(report: Report, run_dir: Path, model: str | torch.nn.Module | None = None, samples: int = 2,
                 registry: Registry | None = None, target_options: dict[str, Any] | None = None) -> Plan:
    """The Plan that compiled ``run_dir`` (its spec exactly as recorded), checking ``samples`` seeded inputs."""
    from edgest.plan import plan

    if report.streaming:
        raise Unsupported(f"run '{run_dir}' compiled a streaming step module; edgest debug compares whole-input runs")
    weights = report.weights.get("path") if report.weights.get("kind") in ("file", "stand-in") else None
    acc = report.check("accuracy")
    seed = int((acc.metrics or {}).get("seed", 0)) if acc else 0
    # plan() checks an output folder it would write; nothing is written there, the run folder is only read
    p = plan(_source(report, run_dir, model), report.target, [(r.name, dict(r.options)) for r in report.passes],
             weights=weights, input_shape=report.model.input.shape, out_dir=Path(run_dir) / "debug-plan",
             precision=report.precision, target_options=target_options, samples=samples, seed=seed, latency=None,
             registry=registry, task_samples=0)
    if report.model.family == "user" and p.spec.name != report.model.name:
        raise BadInput(f"--model builds '{p.spec.name}', but run '{run_dir}' compiled '{report.model.name}'; pass the "
                       "class the run compiled (model=)")
    spec = report.model if report.model.family != "user" else p.spec
    return replace(p, spec=spec, out_dir=Path(run_dir))
