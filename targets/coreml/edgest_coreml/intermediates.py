"""Per-module outputs of an ``.mlpackage`` for ``edgest debug``, from the MIL reference interpreter op by op.

The interpreter (:mod:`edgest_coreml.mil_reference`) keeps every value of the package's ``main``
function while it runs, under its MIL variable name. coremltools names each variable after the
FX node it converts (``conv2d_1``), with ``_cast_fp16`` appended at fp16 and ``_0`` where one node
becomes several ops (``linear_0``), so a probe's node finds its variable by those names. The
values are the interpreter's (float32 arithmetic rounded to each op's declared dtype), not the
Core ML runtime's: on macOS too, the comparison is that of the program the package holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgest.debug import Probe
from edgest_coreml.mil_ops import OPS
from edgest_coreml.mil_reference import MILReferenceRunner, _widen


class RecordingRunner(MILReferenceRunner):
    """The MIL reference interpreter, returning every variable's value instead of only the outputs."""

    def values(self, inputs: Sequence[np.ndarray]) -> dict[str, Any]:
        """Variable name → value after running ``inputs`` through the program (constants included)."""
        env: dict[str, Any] = dict(self._consts)
        for (name, dtype), x in zip(self._inputs, inputs):
            env[name] = np.asarray(x, dtype=dtype)
        for op_type, params, outs in self._steps:
            args = {key: ([_widen(env[v] if kind == "name" else v) for kind, v in bound]) for key, bound in params.items()}
            args = {key: v if key == "values" else v[0] for key, v in args.items()}  # concat takes a list
            result = OPS[op_type](args)
            for (name, dtype), value in zip(outs, result if isinstance(result, tuple) else (result,)):
                value = np.asarray(value)
                env[name] = value.astype(dtype, copy=False) if dtype is not None else value
        return env


    def dequantized(self, name: str) -> str:
        """``name``, or the first ``dequantize`` of the ``quantize`` that reads it: the value in real units.

        In a W8A8 program coremltools may compute an ``add`` on rescaled operands (a ``dequantize``
        with scale 1) and fold the scale into the ``quantize`` after it; only the ``dequantize``
        the next layer reads is in the model's units again.
        """
        def first(op: str, reads: str) -> str | None:
            for op_type, params, outs in self._steps:
                if op_type == op and ("name", reads) in params.get("input", []):
                    return str(outs[0][0])
            return None

        quantized = first("quantize", name)
        return (first("dequantize", quantized) if quantized else None) or name


def variable_of(node: str, names: set[str]) -> str | None:
    """The MIL variable coremltools made for FX node ``node``, or None."""
    pattern = re.compile(rf"{re.escape(node)}(_0)?(_cast_fp16)?")
    found = sorted(n for n in names if pattern.fullmatch(n))
    return found[0] if found else None


def intermediates(path: Path, inputs: Sequence[Sequence[np.ndarray]], probes: Sequence[Probe]) -> dict[str, list[np.ndarray]]:
    """Run the package at ``path`` in the reference interpreter; probe module → value per input set (as float32)."""
    from edgest.quiet import quiet_loggers
    from edgest_coreml.convert import _quiet

    with _quiet(), quiet_loggers():  # `edgest debug` may be the first to import coremltools (and torchao through it)
        runner = RecordingRunner(path)
    runs = [runner.values(xs) for xs in inputs]
    names = set(runs[0]) if runs else set()
    out = {}
    for p in probes:
        var = variable_of(p.node, names)
        if var is not None:
            var = runner.dequantized(var)
            out[p.module] = [np.asarray(r[var], np.float32) for r in runs]
    return out
