"""``plan()``: the one place a compile request is resolved and validated.

Names (model, target, passes), options (target and pass options, typed by their tables; model
options and the input shape, into the spec's config), the single precision, the run folder and
the check settings are resolved here, once, into a frozen :class:`Plan`. The CLI, bench and the Python API build Plans; :func:`edgest.pipeline.compile`
only runs them, and nothing downstream derives a name, an option or a path again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput, Unsupported
from edgest.model import ModelEntry, is_model_file, load_user_model
from edgest.outdir import check_output
from edgest.passes.base import Pass
from edgest.records import InputSpec, ModelSpec

if TYPE_CHECKING:
    import torch

    from edgest.data.eval import EvalSet
    from edgest.plugins import Registry
    from edgest.target import Target

PassArg = str | tuple[str, dict[str, Any]] | Pass
#: float precisions a target handles itself; int8 goes through the quantize stage
FLOAT_PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class CheckSettings:
    """How the artifact is checked: random inputs, labelled task samples, seed, runtime threads, latency protocol.

    ``eval_set`` is the user's labelled clips (``--eval DIR``, :mod:`edgest.data.eval`): when given it
    replaces the ``task_samples`` synthetic ones.
    """

    samples: int = 8
    task_samples: int = 0
    seed: int = 0
    threads: int = 1
    latency: LatencyConfig | None = field(default_factory=LatencyConfig)
    timeout_s: float = 600.0
    eval_set: EvalSet | None = None


@dataclass(frozen=True)
class Plan:
    """Everything one compile needs, resolved: what to build, for which target, how, where, and how to check it.

    ``model`` is the registered entry that builds the model, or the user's ``nn.Module``;
    ``spec`` already carries a requested ``input_shape`` and the resolved model options (its
    ``config`` is what the entry builds). ``passes`` are constructed pass
    instances in run order (``quantize`` included for int8).
    """

    spec: ModelSpec
    model: ModelEntry | torch.nn.Module
    target: Target
    precision: str
    passes: tuple[Pass, ...]
    out_dir: Path
    checks: CheckSettings = field(default_factory=CheckSettings)
    weights: Path | None = None
    force: bool = False
    #: the checked ``--weights-format`` (``"timm-vit:inflate=average"``); None: detected from the file's structure
    weights_format: str | None = None
    #: compile the model's step (streaming) module instead of the whole-input model (:mod:`edgest.streaming`)
    streaming: bool = False
    #: ask the target's op coverage of the captured program for the report (``compile --coverage``)
    coverage: bool = False

    @property
    def trained(self) -> bool:
        """True when the user gave weights (task-accuracy limits apply only then)."""
        return self.weights is not None

    def build_module(self) -> torch.nn.Module:
        """The model in eval mode, from its deterministic initialisation at ``spec.config`` (or the user's own module)."""
        return self.model.build(self.spec.config) if isinstance(self.model, ModelEntry) else self.model.eval()


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x3x16x224x224"`` → ``(1, 3, 16, 224, 224)``; BadInput otherwise."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise BadInput(f"malformed input shape '{text}'; write it like 1x3x16x224x224") from None
    if not shape or any(d <= 0 for d in shape):
        raise BadInput(f"input shape '{text}' must be positive integers, like 1x3x16x224x224")
    return shape


def plan(
    model: str | torch.nn.Module,
    target: str,
    passes: Sequence[PassArg] = (),
    weights: str | Path | None = None,
    input_shape: Sequence[int] | str | None = None,
    out_dir: str | Path | None = None,
    *,
    precision: str | None = None,
    target_options: dict[str, Any] | None = None,
    threads: int = 1,
    samples: int = 8,
    seed: int = 0,
    latency: LatencyConfig | None = LatencyConfig(),
    check_timeout_s: float = 600.0,
    force: bool = False,
    registry: Registry | None = None,
    task_samples: int | None = None,
    model_options: dict[str, Any] | None = None,
    weights_format: str | None = None,
    eval_dir: str | Path | None = None,
    streaming: bool = False,
    coverage: bool = False,
) -> Plan:
    """Resolve and validate a compile request; raise an :class:`~edgest.errors.EdgestError` naming the first problem.

    Arguments are those of :func:`edgest.pipeline.compile`; ``model_options`` (config keys of a
    registered model, :mod:`edgest.model_options`) and an ``input_shape`` that implies some (frames,
    resolution) resolve into ``spec.config``. Nothing is written here; a changed config is built
    once on the meta device, and a user's model file is imported (to know its class exists).
    ``weights_format`` forces the checkpoint format of ``weights`` (:mod:`edgest.weights.formats`;
    None detects it from the file's structure). ``eval_dir`` is a folder of the user's labelled clips
    (:mod:`edgest.data.eval`), checked against the model here (its files are listed, not decoded);
    its clips replace the synthetic task set. ``streaming`` compiles ``ModelSpec.step`` (:mod:`edgest.streaming`).
    ``coverage`` adds the target's op coverage of the captured program to the report (seconds more).
    """
    from edgest.plan_args import check_all
    from edgest.plugins import get_registry
    from edgest.quantize.stage import with_quantize_pass

    check_all(model, target, passes, input_shape, out_dir, weights, eval_dir, seed, threads, samples, check_timeout_s,
              target_options)
    reg = registry or get_registry()
    target_cls = reg.target(target)
    if isinstance(model, str) and not is_model_file(model):
        reg.model(model)
    options = dict(target_options or {})
    precision = _precision(precision, options, target_cls)
    pass_objs = with_quantize_pass(_passes(passes, reg), precision, reg)
    shape = parse_shape(input_shape) if isinstance(input_shape, str) else (tuple(input_shape) if input_shape else None)
    checks = _check_settings(samples, task_samples, weights, seed, threads, latency, check_timeout_s)
    weights_format = _weights_format(weights_format, weights)
    tgt = _target(target_cls, precision, options)
    out = Path(out_dir) if out_dir else Path("edgest-out") / f"{_folder_name(model)}-{'streaming-' if streaming else ''}{target}"
    check_output(out, force)
    spec, source = _model(model, reg, shape, model_options, streaming)
    checks = _with_eval_set(checks, eval_dir, spec)
    return Plan(spec, source, tgt, precision, tuple(pass_objs), out, checks, Path(weights) if weights is not None else None, force,
                weights_format, streaming, bool(coverage))


def _with_eval_set(checks: CheckSettings, eval_dir: str | Path | None, spec: ModelSpec) -> CheckSettings:
    """``checks`` with the user's labelled clips in ``eval_dir`` (listed and checked against ``spec``, not decoded)."""
    if eval_dir is None:
        return checks
    from edgest.data.eval import scan

    return replace(checks, eval_set=scan(eval_dir, spec))


def _folder_name(model: str | torch.nn.Module) -> str:
    if isinstance(model, str):
        return Path(model.partition(":")[0]).stem if is_model_file(model) else model
    return type(model).__name__.lower()


def _precision(precision: str | None, options: dict[str, Any], target_cls: type[Target]) -> str:
    """The one precision: the argument, else a float precision given as the target's option, else the target's default."""
    from edgest.checks import accuracy
    from edgest.validate import did_you_mean

    if precision is None:
        given = options.get("precision")
        precision = given if given in FLOAT_PRECISIONS else target_cls.default_precision
    if precision not in accuracy.LIMITS:
        raise BadInput(f"unknown precision '{precision}'; available: {', '.join(accuracy.LIMITS)}"
                       f"{did_you_mean(precision, accuracy.LIMITS)}")
    if precision not in target_cls.precisions:
        raise Unsupported(f"target '{target_cls.name}' does not support precision '{precision}'; "
                          f"supported: {', '.join(target_cls.precisions)}")
    return precision


def _target(target_cls: type[Target], precision: str, options: dict[str, Any], available: bool = True) -> Target:
    """Construct the target once (its option table checks the options) and make sure it can work here
    (``available`` False: do not; ``edgest check`` asking a :attr:`~edgest.target.Target.coverage_needs_runtime` False target)."""
    options = dict(options)
    if precision in FLOAT_PRECISIONS:  # float precisions are the target's own business: pass them on as its option
        if options.get("precision", precision) != precision:
            raise BadInput(f"precision {precision} and target option precision={options['precision']} disagree; give one of them")
        if precision != "fp32" or "precision" in target_cls.option_table:
            options["precision"] = precision
    from edgest.target_options import check_precision_options

    check_precision_options(target_cls, precision, options)
    tgt = target_cls(**options)
    if available:
        tgt.ensure_available()
    return tgt


def _passes(passes: Sequence[PassArg], registry: Registry) -> list[Pass]:
    out = []
    for p in passes:
        if isinstance(p, Pass):
            out.append(p)
        elif isinstance(p, tuple):
            out.append(registry.pass_(p[0])(**p[1]))
        else:
            out.append(registry.pass_(p)())
    return out


def _weights_format(text: str | None, weights: str | Path | None) -> str | None:
    """The checked ``weights_format`` (:func:`edgest.weights.canonical`); it needs ``weights``."""
    from edgest.weights import canonical

    fmt = canonical(text)
    if fmt is not None and weights is None:
        raise BadInput(f"--weights-format {fmt} needs a weights file; add --weights FILE")
    return fmt


def _check_settings(samples: int, task_samples: int | None, weights: str | Path | None, seed: int, threads: int,
                    latency: LatencyConfig | None, timeout_s: float) -> CheckSettings:
    from edgest.data.tasks import TASK_SAMPLES

    if samples < 1:
        raise BadInput("samples must be at least 1")
    if task_samples is None:
        task_samples = TASK_SAMPLES if weights is not None else 0
    if task_samples < 0:
        raise BadInput("task_samples must be 0 (off) or more")
    if threads < 1:
        raise BadInput("threads must be at least 1")
    return CheckSettings(samples, task_samples, seed, threads, latency, timeout_s)


def _model(model: str | torch.nn.Module, registry: Registry, input_shape: tuple[int, ...] | None,
           model_options: dict[str, Any] | None = None, streaming: bool = False) -> tuple[ModelSpec, Any]:
    """The model's spec (at ``input_shape`` when given, with ``model_options`` resolved) and what builds it;
    BadInput for ``streaming`` when the model has no step module (``ModelSpec.step``)."""
    import torch

    from edgest.model_options import resolve

    entry = registry.models.get(model) if isinstance(model, str) else None
    if streaming and (entry is None or not entry.spec.step):
        from edgest.streaming.spec import no_step_module

        raise no_step_module(_folder_name(model), sorted(n for n, e in registry.models.items() if e.spec.step))

    if model_options and not (isinstance(model, str) and not is_model_file(model)):
        raise BadInput(f"model options ({', '.join(model_options)}) apply to registered models; "
                       "build your own module with the values you want instead")
    if isinstance(model, str) and is_model_file(model):
        if input_shape is None:
            raise BadInput(f"model file '{model}' needs --input-shape (input_shape=), e.g. 1x3x224x224")
        model = load_user_model(model)
    if isinstance(model, torch.nn.Module):
        if input_shape is None:
            raise BadInput("a user nn.Module needs input_shape (e.g. input_shape=(1, 3, 224, 224))")
        return ModelSpec(name=type(model).__name__.lower(), family="user", input=InputSpec(input_shape), num_classes=0), model
    entry: ModelEntry = registry.model(model)
    spec = entry.spec
    if input_shape is not None:
        if len(input_shape) != len(spec.input.shape):
            raise BadInput(
                f"input shape {'x'.join(map(str, input_shape))} has {len(input_shape)} dims; model '{spec.name}' "
                f"takes {len(spec.input.shape)} ({spec.input.layout or 'default'} {'x'.join(map(str, spec.input.shape))})"
            )
    return _fitted_preprocessing(resolve(entry, input_shape, model_options)), entry


def _fitted_preprocessing(spec: ModelSpec) -> ModelSpec:
    """``spec`` with its declared preprocessing at the frames and size it compiles for (what the report records)."""
    from edgest.data.preprocessing import for_spec

    prep = for_spec(spec) if spec.preprocessing is not None else None
    return spec if prep is None or prep == spec.preprocessing else replace(spec, preprocessing=prep)
