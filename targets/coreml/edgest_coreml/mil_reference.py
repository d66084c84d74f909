"""A NumPy reference interpreter for the ML Program inside a saved ``.mlpackage``.

Core ML prediction needs macOS; most users convert on Linux CI. This runs the package's own
``main`` function op by op in NumPy so the accuracy check can still judge *what was written*:
the spec and the weights are read back from the package with coremltools' own readers
(``ct.utils.load_spec`` and the MIL proto loader's value reader, which uses
``libmilstoragepython``'s blob reader for ``weights/weight.bin``), nothing is taken from the
converter's in-memory program.

Precision: every op computes in float32 and its result is rounded to the dtype the program
declares for that output, so fp16 tensors stay float16 between ops and ``cast`` ops take
effect, roughly as Core ML's fp16 CPU path does (its GPU and Neural Engine paths differ in
accumulation). It is a reference, not the Core ML runtime, and says so in its ``label``.

An op with no kernel in :mod:`edgest_coreml.mil_ops` makes :class:`MILReferenceRunner` raise
:class:`OpNotImplemented` at load time, which the checks report as "not run", never passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgest.errors import BadInput, TargetUnavailable, Unsupported
from edgest_coreml.mil_ops import CONSTEXPR, OPS

LABEL = "MIL reference (not the Core ML runtime)"

#: MIL proto DataType name → NumPy dtype of a tensor at run time
_PROTO_DTYPES = {"FLOAT16": np.float16, "FLOAT32": np.float32, "FLOAT64": np.float64, "BOOL": np.bool_,
                 "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
                 "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32}


class OpNotImplemented(TargetUnavailable):
    """The program holds an op the interpreter has no kernel for: the package is not checked."""

    def __init__(self, ops: Sequence[str]) -> None:
        names = ", ".join(ops)
        super().__init__(f"not checked: op{'s' if len(ops) > 1 else ''} {names} not implemented in the MIL reference interpreter")
        self.ops = tuple(ops)


class MILReferenceRunner:
    """Runs an ``.mlpackage``'s ML Program in NumPy; numpy in, numpy out, like any Runner.

    ``label`` names what ran for the report; ``timing_unavailable`` tells the check process
    not to time it (an interpreter's speed says nothing about Core ML's).
    """

    threads: int = 0
    label: str = LABEL

    def __init__(self, path: Path, timing_unavailable: str | None = None) -> None:
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto.load import (
            TranscriptionContext,
            _load_value,
        )
        from coremltools.proto import MIL_pb2

        self.path = Path(path)
        self.timing_unavailable = timing_unavailable
        if not (self.path / "Manifest.json").is_file():
            raise Unsupported(f"no Core ML package at {self.path} (a .mlpackage folder with Manifest.json)")
        spec = ct.utils.load_spec(str(self.path))
        if spec.WhichOneof("Type") != "mlProgram":
            raise Unsupported(f"{self.path.name} is a {spec.WhichOneof('Type')} model, not an ML Program")
        function = spec.mlProgram.functions["main"]
        block = function.block_specializations[function.opset]
        known = {"const", *OPS, *CONSTEXPR}
        missing = sorted({op.type for op in block.operations if op.type not in known})
        if missing:
            raise OpNotImplemented(missing)
        for op in block.operations:
            if op.blocks:
                raise OpNotImplemented([f"{op.type} (with nested blocks)"])

        context = TranscriptionContext(str(self.path / "Data" / "com.apple.CoreML" / "weights"))
        self._consts: dict[str, Any] = {}
        self._steps: list[tuple[str, dict[str, Any], list[tuple[str, Any]]]] = []
        for op in block.operations:
            if op.type == "const":
                self._consts[op.outputs[0].name] = _as_array(_load_value(context, op.attributes["val"]))
                continue
            if op.type in CONSTEXPR and not op.inputs:  # iOS16/17 compressed weights: decompress once
                attrs = {k: _as_array(_load_value(context, v)) for k, v in op.attributes.items() if k != "name"}
                dtype = _PROTO_DTYPES[MIL_pb2.DataType.Name(op.outputs[0].type.tensorType.dataType)]
                self._consts[op.outputs[0].name] = np.asarray(CONSTEXPR[op.type](attrs)).astype(dtype)
                continue
            params: dict[str, Any] = {}
            for key, binding in op.inputs.items():
                args = [("name", a.name) if a.WhichOneof("binding") == "name"
                        else ("value", _as_array(_load_value(context, a.value))) for a in binding.arguments]
                params[key] = args
            outs = [(o.name, _PROTO_DTYPES.get(MIL_pb2.DataType.Name(o.type.tensorType.dataType)))
                    for o in op.outputs]
            self._steps.append((op.type, params, outs))
        self._inputs = [(i.name, _PROTO_DTYPES[MIL_pb2.DataType.Name(i.type.tensorType.dataType)])
                        for i in function.inputs]
        self._outputs = list(block.outputs)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise BadInput(f"{self.path.name} takes {len(self._inputs)} input(s), got {len(inputs)}")
        env: dict[str, Any] = dict(self._consts)
        for (name, dtype), x in zip(self._inputs, inputs):
            env[name] = np.asarray(x, dtype=dtype)
        for op_type, params, outs in self._steps:
            args = {}
            for key, bound in params.items():
                values = [_widen(env[v] if kind == "name" else v) for kind, v in bound]
                args[key] = values if key == "values" else values[0]  # concat takes a list
            result = OPS[op_type](args)
            results = result if isinstance(result, tuple) else (result,)
            for (name, dtype), value in zip(outs, results):
                value = np.asarray(value)
                env[name] = value.astype(dtype, copy=False) if dtype is not None else value
        results = []
        for name in self._outputs:
            y = env[name]
            results.append(y.astype(np.float32) if y.dtype == np.float16 else y)
        return results


def _as_array(value: Any) -> Any:
    return value if isinstance(value, str) else np.asarray(value)


def _widen(x: Any) -> Any:
    """fp16 → float32 for the computation; the result is rounded back to the declared dtype."""
    return x.astype(np.float32) if isinstance(x, np.ndarray) and x.dtype == np.float16 else x
