"""``debug_run(run_dir)``: which PyTorch module made a compiled artifact differ from eager.

Rebuild the run's model and captured program (:mod:`edgest.debug.rebuild`), take eager's output
of every submodule (:mod:`edgest.debug.eager`), find the same outputs in the program the target
lowered (:mod:`edgest.debug.probes`), ask the target for the artifact's values there
(:meth:`edgest.target.Target.intermediates`), and compare them module by module in graph order
(:mod:`edgest.debug.localize`). The findings go to ``debug.json``, ``debug.md`` and an SVG chart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.debug.localize import DebugResult, compare_modules, upstream, verdict
from edgest.errors import EdgestError, Unsupported

if TYPE_CHECKING:
    import torch

    from edgest.plan import Plan
    from edgest.plugins import Registry
    from edgest.records import Report


def supports_intermediates(target_cls: type) -> bool:
    """Whether a target class overrides :meth:`edgest.target.Target.intermediates`."""
    from edgest.target import Target

    return getattr(target_cls, "intermediates", None) is not Target.intermediates


def debug_run(run_dir: str | Path, *, model: str | torch.nn.Module | None = None, samples: int = 2,
              registry: Registry | None = None, target_options: dict[str, Any] | None = None,
              write: bool = True) -> DebugResult:
    """Compare the artifact in ``run_dir`` with eager PyTorch module by module; name the module where the error starts.

    ``model`` is needed only for a run of a user's own model (a ``file.py:Class`` reference or the
    module). ``samples`` seeded inputs (the run's seed) are compared. With ``write`` the findings
    are written into the run folder (``debug.json``, ``debug.md``, ``debug-sqnr.svg``). Raises
    Unsupported for a target without intermediate outputs, BadInput for a folder that is no run.
    """
    from edgest.debug.rebuild import rebuild_plan
    from edgest.plugins import get_registry
    from edgest.report.writers import read_run

    run_dir = Path(run_dir)
    report = read_run(run_dir)
    reg = registry or get_registry()
    target_cls = reg.target(report.target)
    if not supports_intermediates(target_cls):
        raise Unsupported(f"per-layer debug not supported by target '{target_cls.name}' (it defines no "
                          "Target.intermediates); targets that support it: "
                          + (", ".join(sorted(n for n, c in reg.targets.items() if supports_intermediates(c))) or "none"))
    plan = rebuild_plan(report, run_dir, model, samples, reg, target_options)
    result = debug_plan(plan, run_dir / report.artifact.path, report)
    if write:
        from edgest.debug.write import write_debug

        result = write_debug(result, run_dir)
    return result


def debug_plan(plan: Plan, artifact: Path, report: Report | None = None) -> DebugResult:
    """The comparison for an artifact ``plan`` compiled (see :func:`debug_run`); writes nothing."""
    from edgest.checks import accuracy
    from edgest.debug.eager import module_outputs
    from edgest.debug.probes import program_probes
    from edgest.stages.build import build
    from edgest.stages.transform import capture_program, run_passes

    built = build(plan)
    eager = module_outputs(built.module, built.inputs)  # before capture: a pass may rewrite modules in place
    program, example = capture_program(plan, built)
    done = run_passes(plan, program, example, built)
    probes = program_probes(done.program, {k: v[0].shape for k, v in eager.items()})
    try:
        actual = plan.target.intermediates(artifact, done.program, built.inputs, probes)
    except EdgestError:
        raise
    except Exception as exc:  # a runtime failing on extra outputs is one line
        from edgest.capture import describe_failure

        raise Unsupported(f"target '{plan.target.name}' could not expose intermediate outputs: {describe_failure(exc)}") from exc
    exposed = [p for p in probes if p.module in actual]  # a module reads through the ones the artifact fused away
    modules = compare_modules(exposed, eager, actual, upstream(done.program.graph, exposed))
    limit = accuracy.LIMITS[plan.precision]["min_sqnr_db"]
    culprit, why, largest = verdict(modules, limit)
    acc = report.check("accuracy") if report else None
    out_sqnr = (acc.metrics or {}).get("sqnr_db") if acc else None
    compared = {m.module for m in modules}
    return DebugResult(str(plan.out_dir), plan.spec.name, plan.target.name, plan.precision, limit, len(built.inputs),
                       tuple(modules), culprit, why, largest, tuple(p.module for p in probes if p.module not in compared),
                       out_sqnr if isinstance(out_sqnr, (int, float)) else None)
