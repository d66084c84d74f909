"""The step-module protocol, and the step interface a streaming compile documents.

A model family opts into streaming by naming, in ``ModelSpec.step``, a method of its built model
that returns its step module: an ``nn.Module`` (eval mode) with

* ``forward(x_t, *state) -> (out_t, *next_state)``: one step; state in and out are plain tensors,
  same count, order, shapes and dtypes, so any runtime runs it with no state API;
* ``init_state(batch) -> tuple[Tensor, ...]``: the state before the first step;
* ``state_names``: one stable name per state tensor (identifier characters);
* ``steps(x) -> Tensor``: a whole input as the step inputs it streams as, step axis first;
* ``reference(x) -> Tensor``: what ``out_t`` must equal, from the parallel (whole-input) model,
  steps on axis 1 (``(B, L, ...)``);
* ``step_seconds``: how much signal one step covers (the hop), for the real-time factor;
* optional ``step_input``, ``output`` and ``state_descriptions``: what ``x_t``, ``out_t`` and each state are.

:func:`interface` is what ``streaming.json`` holds: names, shapes, dtypes and initial values of
every input and output, how the state feeds back, and the hop.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.errors import BadInput

if TYPE_CHECKING:
    import torch

    from edgest.plugins import Registry
    from edgest.records import ModelSpec, Report
    from edgest.streaming.build import StreamData

#: methods and attributes a step module must have (:func:`step_module` checks them)
PROTOCOL = ("init_state", "state_names", "steps", "reference", "step_seconds")
#: inline initial values of state tensors up to this many elements; larger ones are described
INLINE_VALUES = 64
FILE_NAME = "streaming.json"
#: beside it: the seeded random sequences (``q{i}``: step inputs, step axis first), the parallel model's
#: per-step outputs on them (``r{i}``) and the initial states (``init{j}``); what a device bundle carries
SEQUENCES_FILE = "stream_reference.npz"


def no_step_module(name: str, streaming_models: list[str]) -> BadInput:
    """The one-line error for ``--streaming`` on a model whose spec names no step module."""
    have = ", ".join(streaming_models) or "none installed"
    return BadInput(f"model '{name}' has no step (streaming) module; --streaming (streaming=True) compiles "
                    f"models whose spec names one (ModelSpec.step): {have}")


def check_models(models: list[str], registry: Registry) -> None:
    """BadInput (:func:`no_step_module`) for the first of ``models`` whose spec names no step module (bench --streaming)."""
    for name in models:
        entry = registry.models.get(name)
        if entry is not None and not entry.spec.step:
            raise no_step_module(name, sorted(n for n, e in registry.models.items() if e.spec.step))


def step_module(spec: ModelSpec, model: torch.nn.Module) -> torch.nn.Module:
    """The built ``model``'s step module, in eval mode; BadInput when it breaks the protocol."""
    make = getattr(model, spec.step, None) if spec.step else None
    if not callable(make):
        raise BadInput(f"model '{spec.name}' names step method '{spec.step}', which its module "
                       f"{type(model).__name__} lacks; fix ModelSpec.step")
    step = make().eval()
    missing = [a for a in PROTOCOL if not hasattr(step, a)]
    if missing:
        raise BadInput(f"the step module of '{spec.name}' ({type(step).__name__}) lacks {', '.join(missing)}; "
                       "see edgest.streaming.spec for the protocol")
    return step


def _tensor(name: str, arr: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {"name": name, "shape": list(arr.shape), "dtype": str(arr.dtype), **extra}


def _initial(arr: np.ndarray) -> Any:
    """An initial value as JSON: "zeros", a constant, or the values themselves when small."""
    if not np.any(arr):
        return "zeros"
    if np.all(arr == arr.flat[0]):
        return f"all {float(arr.flat[0]):g}"
    return arr.tolist() if arr.size <= INLINE_VALUES else "see the step module's init_state"


def interface(step: Any, x_t: np.ndarray, init: list[np.ndarray], outputs: list[np.ndarray], steps: int) -> dict[str, Any]:
    """The step interface: inputs ``(x_t, *state)``, outputs ``(out_t, *next_state)``, the feedback, the hop."""
    names = list(step.state_names)
    if len(names) != len(init) or len(outputs) != len(init) + 1:
        raise BadInput(f"step module {type(step).__name__}: {len(names)} state names, {len(init)} initial state "
                       f"tensors and {len(outputs)} outputs; it must return one output plus every state tensor")
    hop = float(step.step_seconds)
    about = list(getattr(step, "state_descriptions", ())) or [""] * len(names)
    state_in = [_tensor(n, a, initial=_initial(a), description=d) for n, a, d in zip(names, init, about)]
    return {
        "inputs": [_tensor("x_t", x_t, description=getattr(step, "step_input", ""))]
                  + state_in,
        "outputs": [_tensor("out_t", outputs[0], description=getattr(step, "output", ""))]
                   + [_tensor(f"{n}_next", a) for n, a in zip(names, outputs[1:])],
        "state_feedback": [{"output": j + 1, "input": j + 1, "name": n} for j, n in enumerate(names)],
        "semantics": ("call the artifact once per step with (x_t, *state) in input order; start from each state's "
                      "initial value; feed outputs 1..N back as inputs 1..N of the next step; out_t is output 0"),
        "steps": steps,
        "step_seconds": hop,
        "rate_hz": round(1.0 / hop, 6) if hop > 0 else 0.0,
    }


def write_interface(folder: Path, report: Report, data: StreamData | None = None) -> None:
    """Write ``streaming.json`` beside the artifact: the report's step interface, the model, the artifact's file;
    and, given the compile's ``data``, :data:`SEQUENCES_FILE` (what a device bundle streams and compares against)."""
    from edgest.fsio import atomic_write_text, dumps_json

    art = report.artifact
    doc = {"model": report.model.name, "target": report.target, "precision": report.precision,
           "artifact": art.path if art else "", **report.streaming}
    atomic_write_text(Path(folder) / FILE_NAME, dumps_json(doc))
    if data is not None:
        random = len(data.sequences) - len(data.labels)  # the seeded random sequences; the labelled ones come last
        np.savez(Path(folder) / SEQUENCES_FILE, **{f"q{i}": q for i, q in enumerate(data.sequences[:random])},
                 **{f"r{i}": r for i, r in enumerate(data.reference[:random])},
                 **{f"init{j}": a for j, a in enumerate(data.init)})


def read_sequences(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """The step inputs, the parallel model's per-step reference (step axis first) and the initial states in
    :data:`SEQUENCES_FILE` at ``path``; KeyError, OSError or ValueError when it is damaged."""
    with np.load(path) as f:
        count = sum(1 for k in f.files if k.startswith("q"))
        states = sum(1 for k in f.files if k.startswith("init"))
        if not count:
            raise KeyError("no sequences")
        return ([f[f"q{i}"] for i in range(count)], [f[f"r{i}"] for i in range(count)],
                [f[f"init{j}"] for j in range(states)])
