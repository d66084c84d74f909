"""Build stage: the model with its weights, the seeded inputs, and eager PyTorch's reference outputs on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.capture import first_line
from edgest.checks import accuracy
from edgest.checks.eager import eager_output_sets, eager_outputs
from edgest.data.eval import check_label_range
from edgest.data.eval import task_set as eval_task_set
from edgest.data.tasks import TaskSet, task_set
from edgest.errors import BadInput, EdgestError
from edgest.responsive import warn_if_unresponsive
from edgest.weights import load_weights

if TYPE_CHECKING:
    from edgest.plan import Plan
    from edgest.records import ModelSpec


@dataclass(frozen=True)
class Built:
    """The eval-mode module, the seeded random inputs with eager's outputs, and the labelled task set if any."""

    module: Any
    inputs: list[list[np.ndarray]]
    reference: list[np.ndarray]
    task: TaskSet | None = None
    task_reference: list[np.ndarray] | None = None
    #: every output of the model on each random input (``reference`` holds the first ones)
    reference_sets: list[list[np.ndarray]] | None = None
    #: what the weights file gave the model (:mod:`edgest.weights.provenance`); empty without one
    weights: dict[str, Any] = field(default_factory=dict)
    #: a ``--streaming`` compile's sequences and reference (:class:`edgest.streaming.build.StreamData`);
    #: ``module`` is then the step module and ``inputs`` are step inputs with realistic states
    streaming: Any = None

    @property
    def judged_inputs(self) -> list[list[np.ndarray]]:
        """Every input the accuracy check runs: the random ones, then the labelled samples."""
        return self.inputs + (self.task.inputs if self.task else [])

    @property
    def judged_reference(self) -> list[np.ndarray]:
        """Eager's outputs on :attr:`judged_inputs`."""
        return self.reference + (self.task_reference or [])


def _check_memory(plan: Plan, module: Any) -> None:
    """Refuse, with the figures and the fix, inputs, activations or calibration sets that cannot fit in memory."""
    from edgest import resources

    spec, settings = plan.spec, plan.checks
    # task_set makes no set for a model without classes; an eval set checks its own size (held or memory-mapped)
    task = settings.task_samples if spec.num_classes >= 2 and settings.eval_set is None else 0
    resources.check_run_memory(spec.input.shape, settings.samples, task, module)
    for p in plan.passes:
        if p.name == "quantize":
            resources.check_calibration(spec.input.shape, int(p.options.get("calibration_size", 1)))


def _labelled(plan: Plan) -> TaskSet | None:
    """The labelled set task accuracy is measured on: the user's ``--eval`` clips, else the synthetic set."""
    settings = plan.checks
    if settings.eval_set is not None:
        return eval_task_set(settings.eval_set, plan.spec)
    return task_set(plan.spec, settings.task_samples, settings.seed)


def eager_sets_or_bad_input(module: Any, inputs: list[list[np.ndarray]], spec: ModelSpec) -> list[Any]:
    """Eager outputs of ``module`` on ``inputs``; an input shape the model cannot take is one BadInput line."""
    where = f"model '{spec.name}'"
    try:
        return eager_output_sets(module, inputs, where)
    except EdgestError:
        raise
    except Exception as exc:  # noqa: BLE001 - a shape the model cannot take
        raise BadInput(f"{where} cannot run on input {'x'.join(map(str, spec.input.shape))}: {first_line(exc)[:200]}") from None


def build(plan: Plan) -> Built:
    """Build the model, load the plan's weights, and run eager PyTorch on the check inputs."""
    module = plan.build_module()
    weights = {} if plan.weights is None else load_weights(
        module, plan.weights, family=plan.spec.family, weights_format=plan.weights_format, model_name=plan.spec.name)
    spec, settings = plan.spec, plan.checks
    _check_memory(plan, module)
    if plan.streaming:
        return _build_streaming(plan, module, weights)
    inputs = accuracy.seeded_inputs([spec.input.shape], settings.samples, settings.seed)
    where = f"model '{spec.name}'"
    sets = eager_sets_or_bad_input(module, inputs, spec)
    accuracy.check_finite(sets, f"eager outputs of {where}")
    warn_if_unresponsive(spec.name, [s[0] for s in sets])  # at once, not after minutes of lowering (edgest.responsive)
    task = _labelled(plan)
    task_ref = eager_outputs(module, task.inputs) if task else None
    if task is not None and task_ref is not None:
        accuracy.check_finite(task_ref, f"eager outputs of {where} on the labelled samples")
        if task.kind == "eval":
            check_label_range(task, task_ref, where)
    return Built(module, inputs, [s[0] for s in sets], task, task_ref, sets, weights)


def _build_streaming(plan: Plan, module: Any, weights: dict[str, Any]) -> Built:
    """The step module, step inputs with realistic states and eager's outputs on them, and the whole sequences."""
    from edgest.streaming.build import stream_data
    from edgest.streaming.spec import step_module

    step = step_module(plan.spec, module)
    data, inputs = stream_data(plan, step, _labelled(plan))
    sets = eager_output_sets(step, inputs, f"the step module of '{plan.spec.name}'")
    accuracy.check_finite(sets, f"eager outputs of the step module of '{plan.spec.name}'")
    return Built(step, inputs, [s[0] for s in sets], None, None, sets, weights, data)
