"""``quantize``: int8 quantisation by the target's own quantizer, calibrated on clips.

Options (``--pass quantize:scheme=int8,calibration_size=16``; the CLI's ``--precision int8``,
``--calibration``, ``--calibration-size`` and ``--quant-skip`` fill them in):

* ``scheme``: ``int8`` (static: weights and activations) or ``int8-weight`` (weights only;
  activations quantised at run time where the runtime does that), as the target offers.
* ``calibration``: a folder of ``.npy`` inputs, or None for synthetic clips at the model's
  shape (see :mod:`edgest.data.calibration`).
* ``calibration_size``: how many inputs to calibrate on (default 32).
* ``skip``: module names (``layer4.1``, ``fc``) to keep in float.
* ``sensitivity``: ``true`` to measure SQNR per quantised conv/linear layer (leave-one-out,
  one quantisation per layer; see :func:`edgest.quantization.sensitivity`) and put the table,
  worst layer first, in the pass's details and the report. CLI: ``--quant-sensitivity``.

The target decides how (:meth:`edgest.target.Target.quantizer`). A program-stage quantizer
returns a new program here; an artifact-stage one runs after ``lower`` (see
:mod:`edgest.quantization`), and this pass only prepares its calibration set. This module
imports nothing heavy: it is loaded whenever the registry is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput, Unsupported
from edgest.passes.base import Pass, PassContext, PassResult

if TYPE_CHECKING:
    import torch

OPTIONS = ("scheme", "calibration", "calibration_size", "skip", "sensitivity")


class QuantizePass(Pass):
    """int8 quantisation with the target's quantizer (PT2E on the program, or on the lowered artifact)."""

    name = "quantize"
    description = "int8 quantisation by the target's quantizer, calibrated on clips (scheme=int8|int8-weight)"

    def __init__(self, **options: Any) -> None:
        from edgest.data.calibration import DEFAULT_SIZE
        from edgest.quantization import SCHEMES

        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise BadInput(f"unknown option '{unknown[0]}' for pass 'quantize'; available: {', '.join(OPTIONS)}")
        scheme = options.get("scheme", "int8")
        if scheme not in SCHEMES:
            raise BadInput(f"unknown quantisation scheme '{scheme}'; available: {', '.join(SCHEMES)}")
        size = options.get("calibration_size", DEFAULT_SIZE)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise BadInput(f"calibration_size must be a positive integer, not {size!r}")
        skip = options.get("skip") or ()
        skip = (skip,) if isinstance(skip, str) else tuple(str(s) for s in skip)
        calibration = options.get("calibration")
        if calibration and not Path(calibration).is_dir():
            raise BadInput(f"calibration folder '{calibration}' does not exist or is not a folder")
        sensitivity = options.get("sensitivity", False)
        if not isinstance(sensitivity, bool):
            raise BadInput(f"sensitivity must be true or false, not {sensitivity!r}")
        super().__init__(scheme=scheme, calibration=str(calibration) if calibration else None,
                         calibration_size=size, skip=list(skip), **({"sensitivity": True} if sensitivity else {}))
        #: what the quantizer did, copied into the artifact's details by the pipeline
        self.details: dict[str, Any] = {}
        #: an artifact-stage step waiting for ``lower`` (see :func:`edgest.quantization.finish`)
        self.pending: Any = None

    def run(self, program: torch.export.ExportedProgram, ctx: PassContext) -> PassResult:
        from edgest.data.calibration import calibration_inputs
        from edgest.quantization import SCHEMES, PendingArtifactStep, ProgramQuantizer, quantizable_layers
        from edgest.records import InputSpec

        target, scheme = ctx.target, self.options["scheme"]
        quantizer = target.quantizer(scheme)
        if quantizer is None:
            schemes = [s for s in SCHEMES if target.quantizer(s) is not None]
            raise Unsupported(
                f"target '{target.name}' has no {scheme} quantizer; supported precisions: {', '.join(target.precisions)}"
                + (f"; quantisation schemes: {', '.join(schemes)}" if schemes else "")
            )
        spec = ctx.options.get("spec")
        if spec is None:  # a PassContext built by hand: only the example's shape is known
            shape = tuple(ctx.example_inputs[0].shape)
            spec = InputSpec(shape, layout="B,C,T,H,W" if len(shape) == 5 and shape[1] == 3 else "")
        calib = calibration_inputs(spec, self.options["calibration_size"], self.options["calibration"], ctx.options.get("seed", 0))
        skip = tuple(self.options["skip"])
        self.details = {"scheme": scheme, "stage": quantizer.stage, "quantizer": type(quantizer).__name__,
                        "calibration": calib.source, "calibration_size": len(calib), "skip": list(skip)}
        self.pending = None
        layers = quantizable_layers(program, skip) if self.options.get("sensitivity") else None
        if isinstance(quantizer, ProgramQuantizer):
            done = quantizer.quantize_program(program, ctx.example_inputs, calib, skip)
            if done.program is None:
                raise Unsupported(f"the {target.name} {scheme} quantizer returned no program")
            self.details.update(done.details)
            if layers is not None:
                self.details["sensitivity"] = _program_sensitivity(quantizer, program, done.program, ctx.example_inputs,
                                                                   calib, skip, layers)
            return PassResult(done.program, True, f"{done.summary}; calibrated on {len(calib)} inputs: {calib.source}",
                              {"sensitivity": self.details["sensitivity"]} if layers is not None else {})
        self.pending = PendingArtifactStep(quantizer, calib, skip, dict(self.details), layers)
        return PassResult(program, False, f"{scheme} deferred to after lowering ({type(quantizer).__name__}); "
                                          f"calibrating on {len(calib)} inputs: {calib.source}")


def _program_sensitivity(quantizer: Any, program: torch.export.ExportedProgram, quantized: torch.export.ExportedProgram,
                         example: tuple[Any, ...], calib: Any, skip: tuple[str, ...], layers: tuple[str, ...]) -> dict[str, Any]:
    """Leave-one-out sensitivity of a program-stage quantizer, run in eager PyTorch on the first calibration inputs."""
    import torch

    from edgest.quantization import SENSITIVITY_INPUTS, sensitivity

    inputs = [tuple(torch.from_numpy(x) for x in xs) for xs in calib.inputs[:SENSITIVITY_INPUTS]]

    def outputs(module: Any) -> list[Any]:
        with torch.no_grad():
            outs = [module(*xs) for xs in inputs]
        return [(o[0] if isinstance(o, (tuple, list)) else o).detach().numpy() for o in outs]

    def run(keep: tuple[str, ...]) -> list[Any]:
        done = quantizer.quantize_program(program, example, calib, keep)
        return outputs(done.program.module())

    result = sensitivity(run, outputs(program.module()), layers, skip, outputs(quantized.module()))
    result["measured_on"] = f"eager PyTorch with the quantised program, first {len(inputs)} calibration inputs"
    return result
