"""Op coverage for ``edgest check`` without TensorRT: TensorRT 10's documented ONNX-parser table on the exported ONNX.

The target lowers through edgest's ONNX export (torch.onnx dynamo exporter, then onnxsim) and
TensorRT's ONNX parser. This module exports the program the same way (one node per distinct op
signature, :func:`edgest.coverage.judged_per_op`), judges every ONNX node with the checks of
:func:`edgest_tensorrt.check.check_onnx_for_tensorrt` (:func:`~edgest_tensorrt.check.node_refusals`:
the operator table of :mod:`edgest_tensorrt.supported_ops`, the documented restrictions,
data-dependent shapes) and traces each ONNX node back to its FX node through the exporter's
``pkg.torch.onnx.name_scopes`` metadata (the last scope is the FX node's name):

* an ONNX node the parser takes → ``native``;
* one it refuses, lacks or whose restriction it breaks → ``unsupported``, naming the ONNX op and why.

A prediction from the parser's documentation, not from TensorRT: it needs neither TensorRT nor a GPU.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import warnings
from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from edgest.coverage import VERDICTS, Coverage, is_work, judged_per_op, not_known
from edgest_tensorrt import supported_ops as ops
from edgest_tensorrt.check import _constants, _shape_info, _walk, node_refusals

if TYPE_CHECKING:
    import torch

#: node metadata key of the torch.onnx dynamo exporter: module scopes, then the FX node's name
SCOPES_KEY = "pkg.torch.onnx.name_scopes"
#: what the ONNX export needs (the TensorRT target lowers through it)
ONNX_TOOLCHAIN = ("onnx", "onnxscript", "onnxsim")

Pieces = dict[str, list[tuple[str, str]]]


def fx_names(model: Any) -> dict[str, str]:
    """ONNX node name and output tensor names → the FX node the exporter made it from (its last name scope)."""
    out: dict[str, str] = {}
    for node in model.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == SCOPES_KEY), None)
        try:
            names = ast.literal_eval(scopes) if scopes else None
        except (ValueError, SyntaxError):
            names = None
        if isinstance(names, list) and names:
            for key in (node.name, *node.output):  # onnxsim keeps node names, and output names of nodes it fuses
                if key:
                    out.setdefault(key, str(names[-1]))
    return out


def export(program: torch.export.ExportedProgram) -> tuple[Any, dict[str, str], torch.fx.Graph]:
    """(ONNX model as the target's lowering makes it, :func:`fx_names` of the export, the exporter's decomposed graph).

    :func:`edgest_onnx.target.export_onnx`'s steps in memory: ``torch.onnx.export(dynamo=True)``, then
    onnxsim (kept only when it succeeds), which drops the metadata read before it.
    """
    import onnxsim
    import torch

    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_program = torch.onnx.export(program, (), dynamo=True, verbose=False)
    model = onnx_program.model_proto
    origin = fx_names(model)
    try:
        simplified, ok = onnxsim.simplify(model)
    except Exception:  # noqa: BLE001 - the lowering keeps the exported graph when onnxsim fails
        simplified, ok = model, False
    return (simplified if ok else model), origin, onnx_program.exported_program.graph


def refusals(model: Any) -> list[tuple[Any, list[str]]]:
    """Each main-graph node of ``model`` with what the parser would refuse about it, its subgraphs and the
    body of the local function it calls included (messages without node names)."""
    ranks, _ = _shape_info(model)
    consts = _constants(model.graph)
    functions = {(f.domain, f.name): f for f in model.functions}
    out = []
    for node in model.graph.node:
        inner = [n for a in node.attribute for g in (a.g, *a.graphs) if g.node for n, _ in _walk(g)]
        if (node.domain, node.op_type) in functions:
            inner += list(functions[(node.domain, node.op_type)].node)
        else:
            inner.insert(0, node)
        out.append((node, [r for n in inner for r in node_refusals(n, ranks, consts)]))
    return out


def judged_onnx(model: Any, origin: dict[str, str]) -> tuple[Pieces, list[str]]:
    """FX node name → a (verdict, note) per ONNX node made from it; refusals of ONNX nodes traced to none."""
    pieces: Pieces = defaultdict(list)
    loose: list[str] = []
    for node, refused in refusals(model):
        why = "; ".join(f"ONNX {r}" if r.startswith("op ") else f"ONNX op {r}" for r in dict.fromkeys(refused))
        verdict = ("unsupported", why) if refused else ("native", "")
        fx = next((origin[k] for k in (node.name, *node.output) if k in origin), None)
        if fx is not None:
            pieces[fx].append(verdict)
        elif refused:
            loose.extend(refused)
    return pieces, loose


def _opset_problem(model: Any) -> str:
    opset = next((o.version for o in model.opset_import if o.domain in ops.DEFAULT_DOMAINS), None)
    if opset is not None and not ops.OPSET_MIN <= opset <= ops.OPSET_MAX:
        return f"; the export's opset {opset} is outside the parser's range {ops.OPSET_MIN}-{ops.OPSET_MAX}"
    return ""


def coverage(program: torch.export.ExportedProgram) -> Coverage:
    """Export ``program`` to ONNX as the target does and judge each ONNX node by TensorRT's documented parser table."""
    missing = [m for m in ONNX_TOOLCHAIN if importlib.util.find_spec(m) is None]
    if missing:
        return not_known("tensorrt", f"the ONNX export it judges needs {', '.join(missing)} "
                         "(pip install -e targets/onnx)", "unavailable")
    found: dict[str, Any] = {}

    def exported(prog: torch.export.ExportedProgram) -> torch.fx.Graph:
        try:
            model, origin, graph = export(prog)
        except Exception as exc:
            raise _ExportFailed from exc
        found["pieces"], loose = judged_onnx(model, origin)
        found["extra"] = _opset_problem(model) + (
            f"; refused, not traced to an op: {'; '.join(dict.fromkeys(loose))[:300]}" if loose else "")
        return graph

    def judge(node: torch.fx.Node) -> tuple[str, str] | None:
        pieces = found["pieces"].get(node.name) if is_work(node) else None
        return max(pieces, key=lambda p: VERDICTS.index(p[0])) if pieces else None

    note = (f"a prediction from TensorRT {ops.TABLE_VERSION}'s documented ONNX-parser operator table and restrictions "
            "(onnx-tensorrt docs/operators.md) on the torch.onnx export + onnxsim, not from TensorRT itself")
    try:
        answer = judged_per_op("tensorrt", program, exported, judge, note)
    except _ExportFailed as exc:
        return unexportable(program, exc.__cause__)
    return replace(answer, note=answer.note + found.get("extra", ""))


class _ExportFailed(Exception):
    """The ONNX export the target lowers through failed (the cause is chained)."""


def unexportable(program: torch.export.ExportedProgram, cause: BaseException | None) -> Coverage:
    """When the ONNX export fails: the ops torch.onnx has no function for are ``unsupported`` (the export, so the
    compile, fails on them); the rest are not judged against TensorRT's table. Re-raises ``cause`` when none is."""
    from edgest_onnx.coverage import coverage as onnx_coverage

    answer = onnx_coverage(program)
    if "unsupported" not in answer.summary():
        raise cause if cause is not None else RuntimeError("the ONNX export failed")
    ops_ = tuple(replace(o, note=f"ONNX export: {o.note}") if o.verdict == "unsupported" else o for o in answer.ops)
    return Coverage("tensorrt", ops_, "the ONNX export the target lowers through fails on the unsupported ops (torch.onnx "
                    f"has no function for them); the others are not checked against TensorRT {ops.TABLE_VERSION}'s "
                    "documented ONNX-parser table (shown as the exporter judges them)")
