"""ExportedProgram → Core ML ML Program (``.mlpackage``), then a look at what was written.

Imports coremltools (10-30 s on a busy host: it pulls in sklearn, xgboost and executorch
when they are installed), so :mod:`edgest_coreml.target` imports this module only inside
``lower``.

What coremltools 9.0 takes from ``torch.export`` (``coremltools/converters/_converters_entry.py``
and ``converters/mil/frontend/torch/converter.py``):

- an ``ExportedProgram`` in the ``ATEN`` or ``EDGE`` dialect. ``torch.export.export`` (torch
  2.5+) gives the ``TRAINING`` dialect, which it rejects with NotImplementedError; its own
  tests call ``run_decompositions({})`` first (empty table: no op is decomposed, the program
  just becomes a functional inference graph), and so does :func:`convert`;
- inputs and outputs are read from the graph signature (``inputs=`` may rename them and fix
  their dtype; a static size given there must equal the exported one);
- ``add``, ``sub`` and ``rsub`` read only positional inputs, and torch.export gives ``alpha`` as a
  keyword: ``x.add(y, alpha=a)`` would silently become ``x + y``. :func:`convert` first rewrites
  each into an explicit ``mul(y, a)`` (:func:`edgest.graph_fixes.alpha_as_mul`);
- mutable buffers become Core ML *states* (fp16 only, iOS18+); edgest's models have none;
- an op with no converter raises ``NotImplementedError("Unsupported fx node NAME, kind KIND")``
  while the graph is read; a converter that fails logs ``ERROR - converting 'KIND' op
  (located at: 'SCOPE')`` and re-raises. :func:`convert` turns both into ``Unsupported``
  naming the aten op and the user's line;
- torch newer than ``coremltools._deps._TORCH_MAX_VERSION`` ("2.7.0" in 9.0) logs a warning at
  import and is otherwise allowed.

Core ML *prediction* needs macOS (``coremltools.libcoremlpython`` is built only there); off
macOS the checks run the saved package with :mod:`edgest_coreml.mil_reference` instead.
:func:`verify_package` checks its interface (names, shapes, dtypes, spec version) on any host.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.capture import op_origin
from edgest.errors import Unsupported
from edgest.graph_fixes import (
    alpha_as_mul as _scale_alpha_operands,  # coremltools drops alpha; tests switch it off
)

if TYPE_CHECKING:
    import torch

#: coremltools passes left out of the default pipeline, and why. ``int_op_canonicalization``
#: rewrites dequantize → reshape → quantize into a reshape of the int8 input, which is right only
#: when both ends share scale and zero point; PT2E often gives them different ones (squeezetime_tiny
#: W8A8: the pooled features enter the head's flatten at scale 4.4e-5, zero point 0, and leave at
#: 7.7e-5, zero point 128), so the head read mis-scaled values (MIL vs torch's quantised program 21 dB)
DROPPED_PASSES = ("common::int_op_canonicalization",)

#: deployment target → Core ML specification version (coremltools.target values, 9.0)
SPEC_VERSIONS: dict[str, int] = {
    **{f"iOS{v}": s for v, s in ((15, 6), (16, 7), (17, 8), (18, 9), (26, 10))},
    **{f"macOS{v}": s for v, s in ((12, 6), (13, 7), (14, 8), (15, 9), (26, 10))},
    **{f"watchOS{v}": s for v, s in ((8, 6), (9, 7), (10, 8), (11, 9), (26, 10))},
    **{f"tvOS{v}": s for v, s in ((15, 6), (16, 7), (17, 8), (18, 9), (26, 10))},
}
PRECISIONS = {"fp32": "FLOAT32", "fp16": "FLOAT16"}
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_NE", "CPU_AND_GPU")

_UNSUPPORTED_NODE = re.compile(r"Unsupported fx node (\S+), kind (\S+)")
_CONVERTING = re.compile(r"ERROR - converting '([^']+)' op \(located at: '([^']*)'\)")
_NUMPY_DTYPES = {"torch.float32": "float32", "torch.float16": "float16", "torch.int32": "int32"}
_MAX_WARNINGS = 20
_TMP = re.compile(r"/(?:private/)?(?:tmp|var/folders)/[\w./-]+")


def tree_sha256(path: Path) -> str:
    """SHA-256 of a package folder (:func:`edgest.fsio.sha256_of`: files in sorted relative-path order, path,
    size, then bytes of each), the same digest the report records as the artifact's sha256.

    Core ML's ``Manifest.json`` names its items with random UUIDs, so two conversions of one model
    differ in that file (and so in this digest).
    """
    from edgest.fsio import sha256_of

    return sha256_of(path)

def mil_op_counts(spec: Any, top: int = 10) -> dict[str, Any]:
    """Operations of the ML Program's functions (nested blocks included): total, non-const, top types."""
    counts: Counter[str] = Counter()

    def walk(block: Any) -> None:
        for op in block.operations:
            counts[op.type] += 1
            for inner in op.blocks:
                walk(inner)

    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            walk(block)
    total = sum(counts.values())
    return {
        "total": total,
        "non_const": total - counts.get("const", 0),
        "types": len(counts),
        "top": dict(counts.most_common(top)),
    }


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = next((ln.strip() for ln in record.getMessage().splitlines() if ln.strip()), "")
        self.messages.append(f"{record.levelname.lower()}: {line}")


@contextlib.contextmanager
def _quiet() -> Iterator[tuple[list[warnings.WarningMessage], _Records, io.StringIO]]:
    """Collect warnings, coremltools' log records and stderr (its progress bars) instead of printing them."""
    handler = _Records()
    log = logging.getLogger("coremltools")
    propagate, level = log.propagate, log.level
    log.addHandler(handler)
    log.propagate = False
    if log.level == logging.NOTSET or log.level > logging.WARNING:
        log.setLevel(logging.WARNING)
    err = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("always")
            yield caught, handler, err
    finally:
        log.removeHandler(handler)
        log.propagate, log.level = propagate, level


def _summarise(caught: Sequence[warnings.WarningMessage], handler: _Records) -> list[str]:
    """Distinct warnings and log lines, each once with its count, most frequent first."""
    seen: Counter[str] = Counter()
    for w in caught:
        seen[_TMP.sub("<tmp>", f"{w.category.__name__}: {_first_line(w.message)[:200]}")] += 1
    for m in handler.messages:
        seen[_TMP.sub("<tmp>", m[:200])] += 1
    return [f"{msg} (x{n})" if n > 1 else msg for msg, n in seen.most_common(_MAX_WARNINGS)]


def _first_line(exc: BaseException | Warning | str) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:240]


def _explain(program: torch.export.ExportedProgram, exc: BaseException, log: Sequence[str], ct_version: str) -> Unsupported:
    """An Unsupported error naming the aten op coremltools failed on and where the user's code called it."""
    node_name = kind = where = ""
    m = _UNSUPPORTED_NODE.search(str(exc))
    if m:
        node_name, kind = m.group(1), m.group(2)
        why = "coremltools has no converter for it"
    else:
        for line in log:
            c = _CONVERTING.search(line)
            if c:
                kind, where = c.group(1), c.group(2)
        why = f"its converter failed: {type(exc).__name__}: {_first_line(exc)}"
    if not kind:
        return Unsupported(f"target 'coreml' cannot lower the model: coremltools {ct_version}: "
                           f"{type(exc).__name__}: {_first_line(exc)}")
    op = f"aten.{kind}"
    for node in program.graph.nodes:
        if node.op == "call_function" and (node.name == node_name or (not node_name and kind in str(node.target))):
            op = str(node.target)
            break
    origin = op_origin(program, op.rsplit(".", 1)[0] if op.count(".") > 1 else op) or (f"module {where}" if where else "")
    return Unsupported(
        f"target 'coreml' cannot lower op {op}{f' (from {origin})' if origin else ''}: {why} "
        f"(coremltools {ct_version}); replace the op or choose another target"
    )


def _output_specs(program: torch.export.ExportedProgram) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of each user output, from the graph's fake tensors."""
    from torch.export.graph_signature import OutputKind

    nodes = {n.name: n for n in program.graph.nodes}
    outs = []
    for spec in program.graph_signature.output_specs:
        if spec.kind != OutputKind.USER_OUTPUT:
            continue
        val = nodes[spec.arg.name].meta.get("val") if hasattr(spec.arg, "name") and spec.arg.name in nodes else None
        shape = tuple(int(d) for d in val.shape) if val is not None and hasattr(val, "shape") else ()
        outs.append((spec.arg.name if hasattr(spec.arg, "name") else "", shape, str(getattr(val, "dtype", ""))))
    return outs


def verify_package(path: Path, inputs: Sequence[tuple[str, tuple[int, ...], str]],
                   outputs: Sequence[tuple[str, tuple[int, ...], str]], spec_version: int) -> dict[str, Any]:
    """Read the written package back (no Core ML runtime needed) and check its interface against the model.

    Raises Unsupported when the package's inputs or outputs differ from the captured program's.
    """
    import coremltools as ct
    from coremltools.proto import FeatureTypes_pb2 as ft

    model = ct.models.MLModel(str(path), skip_model_load=True)  # parses Manifest.json + model.mlmodel
    spec = model.get_spec()
    dtype_name = {v: k.lower() for k, v in ft.ArrayFeatureType.ArrayDataType.items()}

    def describe(features: Any) -> list[dict[str, Any]]:
        return [{"name": f.name, "shape": [int(d) for d in f.type.multiArrayType.shape],
                 "dtype": dtype_name.get(f.type.multiArrayType.dataType, str(f.type.multiArrayType.dataType))}
                for f in features]

    got_in, got_out = describe(spec.description.input), describe(spec.description.output)
    problems = []
    if spec.WhichOneof("Type") != "mlProgram":
        problems.append(f"model type is {spec.WhichOneof('Type')}, not mlProgram")
    if spec.specificationVersion != spec_version:
        problems.append(f"specification version {spec.specificationVersion}, expected {spec_version}")
    if len(got_in) != len(inputs):
        problems.append(f"{len(got_in)} inputs, the model has {len(inputs)}")
    for g, (name, shape, dtype) in zip(got_in, inputs):
        if tuple(g["shape"]) != tuple(shape) or (dtype and g["dtype"] != dtype):
            problems.append(f"input {g['name']} is {g['dtype']} {g['shape']}, the model takes {dtype} {list(shape)}")
    if len(got_out) != len(outputs):
        problems.append(f"{len(got_out)} outputs, the model has {len(outputs)}")
    for g, (name, shape, dtype) in zip(got_out, outputs):
        if shape and tuple(g["shape"]) != tuple(shape):
            problems.append(f"output {g['name']} has shape {g['shape']}, the model gives {list(shape)}")
        if dtype and g["dtype"] != dtype:
            problems.append(f"output {g['name']} is {g['dtype']}, expected {dtype}")
    if problems:
        raise Unsupported(f"target 'coreml' wrote {path.name} with the wrong interface: {'; '.join(problems)}")
    return {"inputs": got_in, "outputs": got_out, "specification_version": spec.specificationVersion,
            "mil_ops": mil_op_counts(spec)}


def convert(program: torch.export.ExportedProgram, example_inputs: Sequence[Any], path: Path, *,
            precision: str = "fp32", deployment_target: str = "iOS17", compute_units: str = "ALL") -> dict[str, Any]:
    """Convert ``program`` to ``path`` (a ``.mlpackage`` folder) and describe the result."""
    import sys

    import numpy as np
    import torch

    imported = "coremltools" in sys.modules
    t0 = time.perf_counter()
    # its import logs about torch versions and the missing runtime binding (the frameworks it would probe for
    # converters a torch program never uses are hidden from it: edgest_coreml.lean_import)
    with _quiet():
        import coremltools as ct
        from coremltools._deps import _TORCH_MAX_VERSION
    import_s = time.perf_counter() - t0
    ct_version = ct.__version__

    with _quiet() as (caught2, handler2, _):
        t1 = time.perf_counter()
        dialect = program.dialect
        if dialect not in ("ATEN", "EDGE"):
            program = program.run_decompositions({})
        decompose_s = time.perf_counter() - t1
        aliases = _drop_aliases(program)
        alphas = _scale_alpha_operands(program)

        user_inputs = list(program.graph_signature.user_inputs)
        ins = [(str(name), tuple(int(d) for d in x.shape), _NUMPY_DTYPES.get(str(x.dtype), "")) for name, x in zip(user_inputs, example_inputs)]
        outs = _output_specs(program)
        ct_inputs = [ct.TensorType(name=name, shape=shape, dtype=np.dtype(dt).type if dt else None) for name, shape, dt in ins]
        # fp32 in and out at both precisions: with FLOAT16 and iOS16+ coremltools would otherwise make them fp16
        out_names = ["output"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))]
        ct_outputs = [ct.TensorType(name=n, dtype=np.float32 if dt in ("torch.float32", "torch.float16") else None)
                      for n, (_, _, dt) in zip(out_names, outs)]

        pipeline = ct.PassPipeline.DEFAULT
        pipeline.remove_passes(DROPPED_PASSES)
        t2 = time.perf_counter()
        try:
            ct.convert(
                program,
                inputs=ct_inputs,
                outputs=ct_outputs,
                convert_to="mlprogram",
                minimum_deployment_target=getattr(ct.target, deployment_target),
                compute_precision=getattr(ct.precision, PRECISIONS[precision]),
                compute_units=getattr(ct.ComputeUnit, compute_units),
                package_dir=str(path),
                pass_pipeline=pipeline,
                skip_model_load=True,  # lowering never needs the runtime; load() does that on macOS
            )
        except Exception as exc:  # noqa: BLE001 - name the op for the user
            raise _explain(program, exc, handler2.messages, ct_version) from exc
        convert_s = time.perf_counter() - t2

    verified = verify_package(
        path, ins,  # dtype "" (not float32/float16/int32): coremltools picks it, not checked
        [(n, s, "float32" if dt in ("torch.float32", "torch.float16") else "") for n, (_, s, dt) in zip(out_names, outs)],
        SPEC_VERSIONS[deployment_target],
    )
    notes = []
    if _version_tuple(torch.__version__) > _version_tuple(_TORCH_MAX_VERSION):
        notes.append(f"torch {torch.__version__} is newer than coremltools {ct_version} has been tested with "
                     f"(up to {_TORCH_MAX_VERSION}); the conversion ran and the accuracy check judges its result")
    if _no_runtime_binding():
        notes.append("coremltools.libcoremlpython (its binding to the Core ML runtime) is absent here: "
                     "the package is built here and checked with the MIL reference interpreter, not run by Core ML")
    return {
        "mil_ops": verified.pop("mil_ops"),
        "minimum_deployment_target": deployment_target,
        "specification_version": verified.pop("specification_version"),
        "compute_precision": PRECISIONS[precision],
        "compute_units": compute_units,
        "coremltools": ct_version,
        "source_dialect": dialect,
        "aliases_dropped": aliases,
        "alphas_made_explicit": alphas,
        "interface": verified,
        "sha256_tree": tree_sha256(path),
        "files": sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()),
        "seconds": {"import_coremltools": round(import_s, 3) if not imported else 0.0,
                    "run_decompositions": round(decompose_s, 3), "convert": round(convert_s, 3)},
        "notes": notes,
        # raised while converting (torch's run_decompositions and coremltools' passes); what `import
        # coremltools` says about this environment (sklearn/xgboost versions, …) is left out, bar the notes
        "warnings": _summarise(caught2, handler2),
    }


def _drop_aliases(program: torch.export.ExportedProgram) -> int:
    """Remove ``aten.alias`` nodes (a full slice such as ``t[..., 0:]`` gives one): coremltools 9 has no
    converter for them, and an alias is the identity in an inference graph. Edits ``program`` in place."""
    import torch

    graph = program.graph_module.graph
    dropped = 0
    outputs = {a for n in graph.nodes if n.op == "output" for a in torch.fx.node.map_arg(n.args, lambda a: a)[0]}
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target is torch.ops.aten.alias.default and node not in outputs:
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
            dropped += 1
    if dropped:
        program.graph_module.recompile()
    return dropped


def _no_runtime_binding() -> bool:
    import importlib.util

    return importlib.util.find_spec("coremltools.libcoremlpython") is None


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v.split("+")[0])[:3])
