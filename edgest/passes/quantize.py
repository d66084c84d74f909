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

from edgest.errors import BadInput
from edgest.passes.base import Pass, PassContext, PassResult
from edgest.quantize.contract import SCHEMES

if TYPE_CHECKING:
    import torch


class QuantizePass(Pass):
    """int8 quantisation with the target's quantizer (PT2E on the program, or on the lowered artifact)."""

    name = "quantize"
    description = "int8 quantisation by the target's quantizer, calibrated on clips (scheme=int8|int8-weight)"
    option_table = {
        "scheme": (SCHEMES, "int8"),
        "calibration": (str, None),
        "calibration_size": (int, None),  # None: edgest.data.calibration.DEFAULT_SIZE
        "skip": (list, []),
        "sensitivity": (bool, False),
    }

    def __init__(self, **options: Any) -> None:
        from edgest.data.calibration import DEFAULT_SIZE

        if isinstance(options.get("calibration"), Path):
            options["calibration"] = str(options["calibration"])
        if type(options.get("skip")) is str:  # one module name from Python (command-line text is typed by the table)
            options["skip"] = [options["skip"]]
        super().__init__(**options)
        size = self.options.get("calibration_size")
        size = DEFAULT_SIZE if size is None else size
        if size < 1:
            raise BadInput(f"pass 'quantize' option calibration_size must be a positive integer, not {size!r}")
        calibration = self.options.get("calibration")
        if calibration:
            from edgest.data.calibration import check_folder

            check_folder(Path(calibration), size)
        self.options = {"scheme": self.option("scheme"), "calibration": calibration or None, "calibration_size": size,
                        "skip": [str(s) for s in self.option("skip")],
                        **({"sensitivity": True} if self.option("sensitivity") else {})}

    def run(self, program: torch.export.ExportedProgram, ctx: PassContext) -> PassResult:
        """Quantise with a program-stage quantizer; an artifact-stage one only runs after ``lower``.

        The compile runs this pass through :func:`edgest.quantize.stage.quantize_program`, which
        also returns the artifact-stage step; run on its own, the pass returns the program unchanged
        with a summary saying the quantisation is deferred.
        """
        from edgest.quantize.stage import quantize_program

        return quantize_program(dict(self.options), program, ctx)[0]
