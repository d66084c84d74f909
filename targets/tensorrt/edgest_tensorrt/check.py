"""The part of the TensorRT path that needs no GPU: export to ONNX, then check the file against
what TensorRT 10's ONNX parser accepts.

:func:`check_onnx_for_tensorrt` returns a list of problems (empty when the file should import):
``onnx.checker`` with ``full_check``, the opset range, every operator (also inside ``If``/``Loop``
bodies and model-local functions) against :mod:`edgest_tensorrt.supported_ops`, the documented
restrictions edgest's models can hit, tensor types, and static shapes on inputs, outputs and
every tensor ONNX shape inference can size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest_tensorrt import supported_ops as ops

if TYPE_CHECKING:
    import torch

_RESIZE_COORD = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
_RESIZE_NEAREST = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}
_POOLS = {"AveragePool", "MaxPool", "LpPool"}


def _attr(node: Any, name: str, default: Any = None) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _where(node: Any, scope: str) -> str:
    name = f"node '{node.name}'" if node.name else f"unnamed node with output '{node.output[0] if node.output else ''}'"
    return f"{name}{f' in {scope}' if scope else ''}"


def _walk(graph: Any, scope: str = "") -> Iterator[tuple[Any, str]]:
    """Every node of ``graph`` and of the subgraphs in its attributes (If/Loop/Scan bodies)."""
    import onnx

    for node in graph.node:
        yield node, scope
        for a in node.attribute:
            inner = f"{scope + '/' if scope else ''}{node.op_type}{f' {node.name!r}' if node.name else ''}.{a.name}"
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _walk(a.g, inner)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _walk(g, inner)


def _check_restrictions(node: Any, where: str, ranks: dict[str, int], consts: dict[str, Any]) -> list[str]:
    """The restrictions of operators.md that a vision/video model can plausibly hit."""
    out: list[str] = []
    op = node.op_type
    where = f"{op} {where}".rstrip()
    if op in _POOLS:
        rank = ranks.get(node.input[0])
        if rank is not None and rank not in (4, 5):
            out.append(f"{where}: TensorRT pools 2D or 3D inputs only, this one is {rank - 2}D")
        dil = _attr(node, "dilations")
        if dil and any(d != 1 for d in dil):
            out.append(f"{where}: TensorRT pooling needs dilations of 1, got {list(dil)}")
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            out.append(f"{where}: TensorRT does not produce MaxPool's Indices output")
    elif op == "Resize":
        mode = _text(_attr(node, "mode", b"nearest"))
        if mode not in ("nearest", "linear"):
            out.append(f"{where}: TensorRT resizes with mode nearest or linear, not '{mode}'")
        coord = _text(_attr(node, "coordinate_transformation_mode", b"half_pixel"))
        if coord not in _RESIZE_COORD:
            out.append(f"{where}: coordinate_transformation_mode '{coord}' is not supported by TensorRT")
        nearest = _text(_attr(node, "nearest_mode", b"round_prefer_floor"))
        if mode == "nearest" and nearest not in _RESIZE_NEAREST:
            out.append(f"{where}: nearest_mode '{nearest}' is not supported by TensorRT")
        if _attr(node, "antialias", 0):
            out.append(f"{where}: TensorRT does not support antialiased Resize")
        policy = _text(_attr(node, "keep_aspect_ratio_policy", b"stretch"))
        if policy != "stretch":
            out.append(f"{where}: keep_aspect_ratio_policy '{policy}' is not supported by TensorRT (stretch only)")
    elif op == "LayerNormalization":
        if any(node.output[1:]):
            out.append(f"{where}: TensorRT produces only LayerNormalization's first output (Y)")
    elif op == "ScatterND":
        reduction = _text(_attr(node, "reduction", b"none"))
        if reduction != "none":
            out.append(f"{where}: TensorRT's ScatterND supports reduction 'none' only, not '{reduction}'")
    elif op == "TopK":
        if _attr(node, "sorted", 1) != 1:
            out.append(f"{where}: TensorRT's TopK needs sorted=1")
        k = consts.get(node.input[1]) if len(node.input) > 1 else None
        if k is not None and int(k.reshape(-1)[0]) >= 3840:
            out.append(f"{where}: TensorRT's TopK needs K < 3840, got {int(k.reshape(-1)[0])}")
    elif op == "GridSample":
        rank = ranks.get(node.input[0])
        if rank is not None and rank != 4:
            out.append(f"{where}: TensorRT's GridSample takes 4D input only, this one is {rank}D")
    elif op in ("LSTM",):
        if _attr(node, "layout", 0) != 0 or _attr(node, "input_forget", 0) != 0:
            out.append(f"{where}: TensorRT's LSTM needs layout=0 and input_forget=0")
    elif op == "Constant":
        if any(a.name in ("sparse_value", "value_string", "value_strings") for a in node.attribute):
            out.append(f"{where}: TensorRT does not import sparse or string constants")
    return out


def node_refusals(node: Any, ranks: dict[str, int], consts: dict[str, Any], where: str = "") -> list[str]:
    """What TensorRT's ONNX parser would refuse about one ONNX node (subgraphs not included); [] when nothing.

    The operator table (:mod:`edgest_tensorrt.supported_ops`), the documented restrictions and
    data-dependent output shapes. ``where`` (the node's location, :func:`_where`) goes into each
    message; '' leaves it out, for a message shared by many nodes (``op Unique is not supported ...``).
    """
    at = f" ({where})" if where else ""
    out: list[str] = []
    if node.domain not in ops.DEFAULT_DOMAINS:
        out.append(f"op {node.domain}::{node.op_type}{at} is outside the default ONNX domain; "
                   "TensorRT's parser needs a plugin for it")
    elif node.op_type in ops.UNSUPPORTED:
        out.append(f"op {node.op_type}{at} is not supported by TensorRT {ops.TABLE_VERSION}'s ONNX parser")
    elif node.op_type not in ops.SUPPORTED:
        out.append(f"op {node.op_type}{at} is not in TensorRT {ops.TABLE_VERSION}'s ONNX operator list")
    else:
        out.extend(_check_restrictions(node, where, ranks, consts))
    if node.op_type in ops.DATA_DEPENDENT_SHAPE and node.op_type not in ops.UNSUPPORTED:
        out.append(f"op {node.op_type}{at} has a data-dependent output shape; "
                   "edgest builds TensorRT engines for static shapes only")
    return out


def _dims(type_proto: Any) -> list[str | int] | None:
    """Dims of a tensor type: int when static, the symbol or '?' otherwise; None if no shape."""
    t = type_proto.tensor_type
    if not t.HasField("shape"):
        return None
    out: list[str | int] = []
    for d in t.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            out.append(d.dim_value)
        elif d.HasField("dim_param") and d.dim_param:
            out.append(d.dim_param)
        else:
            out.append("?")
    return out


def _io_problems(values: Any, kind: str, initializers: set[str]) -> list[str]:
    import onnx

    problems = []
    for v in values:
        if v.name in initializers:
            continue
        if not v.type.HasField("tensor_type"):
            problems.append(f"{kind} '{v.name}' is not a tensor (sequence/map/optional I/O is not supported by TensorRT)")
            continue
        elem = onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)
        if elem not in ops.TENSOR_TYPES:
            problems.append(f"{kind} '{v.name}' has element type {elem}, which TensorRT does not support")
        dims = _dims(v.type)
        if dims is None:
            problems.append(f"{kind} '{v.name}' has no shape; edgest builds TensorRT engines for static shapes")
        elif any(not isinstance(d, int) or d <= 0 for d in dims):
            shown = "x".join(str(d) for d in dims)
            problems.append(f"{kind} '{v.name}' has a dynamic shape {shown}; export with static shapes "
                            "(edgest captures at the model's fixed input shape)")
    return problems


def _shape_info(model: Any) -> tuple[dict[str, int], dict[str, list[str | int]]]:
    """Ranks and dims of every tensor ONNX shape inference can type (empty on failure)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - shape inference is best effort here; the checker already ran
        return {}, {}
    ranks: dict[str, int] = {}
    dims: dict[str, list[str | int]] = {}
    g = inferred.graph
    for v in (*g.input, *g.value_info, *g.output):
        if v.type.HasField("tensor_type"):
            d = _dims(v.type)
            if d is not None:
                ranks[v.name] = len(d)
                dims[v.name] = d
    for init in g.initializer:
        ranks.setdefault(init.name, len(init.dims))
    return ranks, dims


def _constants(graph: Any) -> dict[str, Any]:
    """Initializers and Constant outputs of the main graph as numpy arrays (small ones only)."""
    import onnx
    from onnx import numpy_helper

    out: dict[str, Any] = {}
    for init in graph.initializer:
        if init.data_location != onnx.TensorProto.EXTERNAL and len(init.dims) <= 1:
            out[init.name] = numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant":
            value = _attr(node, "value")
            if value is not None:
                out[node.output[0]] = numpy_helper.to_array(value)
    return out


def check_onnx_for_tensorrt(path: str | Path) -> list[str]:
    """Problems TensorRT 10's ONNX parser would have with the model at ``path``; [] when none.

    Checks: ``onnx.checker`` (full_check), default-domain opset within the parser's range,
    every operator in TensorRT's supported list (:mod:`edgest_tensorrt.supported_ops`) and the
    restrictions edgest's models can hit, I/O element types, and static shapes (no symbolic or
    negative dims on inputs/outputs; no data-dependent shapes inside).
    """
    import onnx

    path = Path(path)
    problems: list[str] = []
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 - the checker's message is the problem
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        problems.append(f"onnx.checker: {first[:300]}")
    model = onnx.load(str(path), load_external_data=False)

    opset = next((o.version for o in model.opset_import if o.domain in ops.DEFAULT_DOMAINS), None)
    if opset is None:
        problems.append("the model imports no default-domain (ai.onnx) opset")
    elif not ops.OPSET_MIN <= opset <= ops.OPSET_MAX:
        problems.append(f"opset {opset} is outside TensorRT {ops.TABLE_VERSION}'s range "
                        f"{ops.OPSET_MIN}-{ops.OPSET_MAX}; re-export with an opset in that range")

    local_functions = {(f.domain, f.name): f for f in model.functions}
    ranks, dims = _shape_info(model)
    consts = _constants(model.graph)
    initializers = {i.name for i in model.graph.initializer}

    def visit(graph: Any, scope: str) -> None:
        for node, where_scope in _walk(graph, scope):
            where = _where(node, where_scope)
            if (node.domain, node.op_type) in local_functions:
                continue  # the parser inlines model-local functions; their bodies are checked below
            problems.extend(node_refusals(node, ranks, consts, where))

    visit(model.graph, "")
    for (domain, name), fn in local_functions.items():
        for node in fn.node:
            if node.domain not in ops.DEFAULT_DOMAINS and (node.domain, node.op_type) not in local_functions:
                problems.append(f"op {node.domain}::{node.op_type} (in local function {domain}::{name}) is outside "
                                "the default ONNX domain; TensorRT's parser needs a plugin for it")
            elif node.domain in ops.DEFAULT_DOMAINS and node.op_type not in ops.SUPPORTED:
                problems.append(f"op {node.op_type} (in local function {domain}::{name}) is not supported by "
                                f"TensorRT {ops.TABLE_VERSION}'s ONNX parser")

    problems.extend(_io_problems(model.graph.input, "input", initializers))
    problems.extend(_io_problems(model.graph.output, "output", set()))
    io_names = {v.name for v in (*model.graph.input, *model.graph.output)}
    dynamic = [(n, d) for n, d in dims.items() if n not in io_names and any(not isinstance(x, int) for x in d)
               and any(isinstance(x, str) and x != "?" for x in d)]
    for name, d in dynamic[:5]:
        problems.append(f"tensor '{name}' has a symbolic shape {'x'.join(map(str, d))}; "
                        "edgest builds TensorRT engines for static shapes only")
    if len(dynamic) > 5:
        problems.append(f"... and {len(dynamic) - 5} more tensors with symbolic shapes")
    return problems


def export_and_check(
    program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path,
) -> tuple[Path, list[str], dict[str, Any]]:
    """``model.onnx`` in ``out_dir`` (edgest_onnx's exporter + onnxsim), its problems, export details."""
    from edgest.errors import Unsupported
    from edgest_onnx.target import export_onnx

    path = Path(out_dir) / "model.onnx"
    try:
        details = export_onnx(program, example_inputs, path)
    except Unsupported as exc:  # the ONNX exporter names target 'onnx'; say which target asked
        raise Unsupported(str(exc).replace("target 'onnx'", "target 'tensorrt' (ONNX export)", 1)) from exc
    return path, check_onnx_for_tensorrt(path), details


def prepare_onnx(
    program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: str | Path,
) -> tuple[Path, list[str]]:
    """Export ``program`` to ``out_dir/model.onnx`` as the TensorRT target would; (path, problems).

    Needs no GPU and no TensorRT: it is the pre-flight check of :meth:`TensorRTTarget.lower`.
    """
    path, problems, _ = export_and_check(program, example_inputs, Path(out_dir))
    return path, problems
