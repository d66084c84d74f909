"""What a ``.tflite`` file holds, read from its flatbuffer without running it.

Uses the pure-Python schema ai-edge-litert ships (``schema_py_generated``), so describing an
artifact never loads the LiteRT runtime in the compiling process (runtimes run only in the
isolated check process).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any


def _names(enum: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def _tensor(sg: Any, index: int, types: dict[int, str]) -> dict[str, Any]:
    t = sg.Tensors(index)
    return {"name": t.Name().decode(errors="replace"), "dtype": types.get(t.Type(), str(t.Type())).lower(),
            "shape": [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []}


def describe(path: Path) -> dict[str, Any]:
    """Op counts by kind, tensor counts by type, and the inputs and outputs of the main subgraph."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(Path(path).read_bytes(), 0)
    ops, types = _names(schema.BuiltinOperator), _names(schema.TensorType)
    kinds = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # the schema keeps both fields
        custom = code.CustomCode()
        kinds.append(custom.decode(errors="replace") if builtin == schema.BuiltinOperator.CUSTOM and custom
                     else ops.get(builtin, str(builtin)))
    sg = model.Subgraphs(0)
    by_kind = Counter(kinds[sg.Operators(i).OpcodeIndex()] for i in range(sg.OperatorsLength()))
    tensors = Counter(types.get(sg.Tensors(i).Type(), str(sg.Tensors(i).Type())).lower() for i in range(sg.TensorsLength()))
    return {
        "ops": sum(by_kind.values()),
        "ops_by_kind": dict(by_kind.most_common()),
        "tensor_types": dict(tensors.most_common()),
        "subgraphs": model.SubgraphsLength(),
        "inputs": [_tensor(sg, int(i), types) for i in sg.InputsAsNumpy()] if sg.InputsLength() else [],
        "outputs": [_tensor(sg, int(i), types) for i in sg.OutputsAsNumpy()] if sg.OutputsLength() else [],
    }
