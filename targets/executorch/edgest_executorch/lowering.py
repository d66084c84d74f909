"""Lowering: captured program → ExecuTorch edge program (XNNPACK-partitioned or portable) → ``.pte``.

Also the delegation report (what went to XNNPACK, what stayed on portable kernels) and the
warnings for ExecuTorch's known traps:

* XNNPACK has no 3-D convolution and the portable ``aten.convolution`` kernel only takes 3-D/4-D
  inputs (1-D/2-D convs), so a Conv3d left in the graph fails when the program runs. By default
  Conv3d is rewritten as one Conv2d over the frames (time offsets stacked into channels), which
  XNNPACK takes; ``decompose_conv3d=False`` keeps it (and warns).
* XNNPACK defines tensors of at most 6 dims; a delegated op on a 7-D tensor makes the method
  fail to load. The partitioner here leaves such ops on portable kernels (and says so).

Everything imports the toolchain lazily: this module is imported only inside ``Target.lower``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.quiet import IMPORT_CHATTER, quiet_loggers

if TYPE_CHECKING:
    import torch

#: XNN_MAX_TENSOR_DIMS in XNNPACK: tensors with more dims cannot be defined in a subgraph
XNN_MAX_DIMS = 6
#: graph plumbing that is neither a kernel nor a delegate
_PLUMBING = {"getitem", "executorch_call_delegate"}


def op_name(target: Any) -> str:
    """``aten.convolution.default`` → ``aten.convolution``; overloads other than default are kept."""
    name = getattr(target, "__name__", None) or str(target)  # edge and ATen overloads: "aten.x.overload"
    return name.removesuffix(".default")


def _ranks(node: torch.fx.Node) -> list[int]:
    """Ranks of the tensors a node reads and writes (from the fake values in ``meta['val']``)."""
    import torch

    vals = [node.meta.get("val")] + [a.meta.get("val") for a in node.all_input_nodes]
    out = []
    for v in vals:
        for t in v if isinstance(v, (tuple, list)) else (v,):
            if isinstance(t, torch.Tensor):
                out.append(t.dim())
    return out


def _is_conv3d(node: torch.fx.Node) -> bool:
    """A convolution (any dialect) on a 5-D input."""
    name = op_name(node.target) if node.op == "call_function" else ""
    if "convolution" not in name and "conv3d" not in name:
        return False
    val = node.args[0].meta.get("val") if node.args and hasattr(node.args[0], "meta") else None
    return getattr(val, "ndim", 0) == 5


def _conv_kind(node: torch.fx.Node) -> str:
    transposed = "convolution" in op_name(node.target) and len(node.args) > 6 and bool(node.args[6])
    return "ConvTranspose3d" if transposed else "Conv3d"


# --------------------------------------------------------------------------- Conv3d → Conv2d


def conv3d_as_conv2d(x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> Any:
    """Conv3d as a single Conv2d: each output frame reads its ``kt`` input frames stacked into channels.

    x (N, C, T, H, W), weight (O, C/g, kt, kh, kw). The kt time-offset slices (each strided to
    the T_out output frames) are stacked as channels c*kt + i, which is the order of
    ``weight.reshape(O, C/g*kt, kh, kw)`` within each group, so the grouped Conv2d computes
    exactly the 3-D sum with a plain view of the weight. Same work as the Conv3d; the stacked
    input is kt times the size of the clip.
    """
    import torch
    import torch.nn.functional as F

    st, sh, sw = _triple(stride)
    pt, ph, pw = _triple(padding)
    dt, dh, dw = _triple(dilation)
    if pt:
        x = F.pad(x, (0, 0, 0, 0, pt, pt))
    n, c, t, h, w = x.shape
    o, cg, kt, kh, kw = weight.shape
    t_out = (t - dt * (kt - 1) - 1) // st + 1
    xt = x.permute(0, 2, 1, 3, 4)  # N, T, C, H, W
    frames = [xt[:, i * dt : i * dt + st * (t_out - 1) + 1 : st] for i in range(kt)]  # kt × (N, T_out, C, H, W)
    stacked = torch.stack(frames, dim=3)  # N, T_out, C, kt, H, W
    x2 = stacked.reshape(n * t_out, c * kt, h, w)
    w2 = weight.reshape(o, cg * kt, kh, kw)
    y = F.conv2d(x2, w2, bias, (sh, sw), (ph, pw), (dh, dw), groups)  # N*T_out, O, H', W'
    return y.reshape(n, t_out, o, y.shape[-2], y.shape[-1]).permute(0, 2, 1, 3, 4)


def _triple(v: Any) -> tuple[int, int, int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return tuple(int(a) for a in (v * 3 if len(v) == 1 else v))  # type: ignore[return-value]


def decompose_conv3d(program: torch.export.ExportedProgram) -> tuple[torch.export.ExportedProgram, int]:
    """Rewrite every Conv3d (not ConvTranspose3d) as Conv2d; returns the program and how many were rewritten."""
    import torch

    aten = torch.ops.aten
    count = sum(1 for n in program.graph.nodes if _is_conv3d(n) and _conv_kind(n) == "Conv3d")
    if not count:
        return program, 0

    def conv3d(x, weight, bias=None, stride=(1,), padding=(0,), dilation=(1,), groups=1):
        if isinstance(padding, str):  # padding="same"/"valid": leave it to the runtime
            return NotImplemented
        return conv3d_as_conv2d(x, weight, bias, stride, padding, dilation, groups)

    def convolution(x, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
        if x.dim() != 5 or transposed:
            return NotImplemented
        return conv3d_as_conv2d(x, weight, bias, stride, padding, dilation, groups)

    program = program.run_decompositions({aten.conv3d.default: conv3d, aten.convolution.default: convolution})
    # the weight permute/reshape must be constants again for XNNPACK to take the conv
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    program = constant_prop_pass(program)
    left = sum(1 for n in program.graph.nodes if _is_conv3d(n))
    return program, count - left


# --------------------------------------------------------------------------- partitioning


def xnnpack_partitioner() -> Any:
    """The XNNPACK partitioner, refusing ops on tensors with more dims than XNNPACK can define."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackPartitioner,
    )

    partitioner = XnnpackPartitioner()
    for config in partitioner.target_partitioner_configs.values():
        check = config.check_constraints

        def bounded(node: Any, ep: Any, _check: Any = check) -> bool:
            if any(r > XNN_MAX_DIMS for r in _ranks(node)):
                return False
            return _check(node, ep)

        config.check_constraints = bounded
    return partitioner


# --------------------------------------------------------------------------- report


def delegation_report(graph_module: torch.fx.GraphModule) -> dict[str, Any]:
    """Counts of operator nodes inside XNNPACK subgraphs and outside them (by op), plus rank facts.

    Follows :func:`executorch.devtools.backend_debug.get_delegation_info` (a node inside a
    ``lowered_module_*`` is delegated, a top-level call is not) but names ops by their target
    (``aten.native_layer_norm``) and leaves out ``getitem`` plumbing.
    """
    delegated: Counter[str] = Counter()
    portable: Counter[str] = Counter()
    subgraphs = 0
    wide_delegated: Counter[str] = Counter()
    wide_portable: Counter[str] = Counter()
    conv3d_portable: Counter[str] = Counter()
    for node in graph_module.graph.nodes:
        if node.op == "get_attr" and node.name.startswith("lowered_module"):
            subgraphs += 1
            for inner in getattr(graph_module, node.target).original_module.graph.nodes:
                if inner.op == "call_function" and op_name(inner.target) not in _PLUMBING and "getitem" not in str(inner.target):
                    delegated[op_name(inner.target)] += 1
                    if any(r > XNN_MAX_DIMS for r in _ranks(inner)):
                        wide_delegated[op_name(inner.target)] += 1
        elif node.op == "call_function":
            name = op_name(node.target)
            if name in _PLUMBING or "getitem" in name or "call_delegate" in name:
                continue
            portable[name] += 1
            if any(r > XNN_MAX_DIMS for r in _ranks(node)):
                wide_portable[name] += 1
            if _is_conv3d(node):
                conv3d_portable[_conv_kind(node)] += 1
    return {
        "delegated_subgraphs": subgraphs,
        "delegated_nodes": sum(delegated.values()),
        "non_delegated_nodes": sum(portable.values()),
        "non_delegated_ops": dict(sorted(portable.items())),
        "_wide_delegated": dict(wide_delegated),
        "_wide_portable": dict(wide_portable),
        "_conv3d_portable": dict(conv3d_portable),
    }


def _ops(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items()))


def lowering_warnings(report: dict[str, Any], flavour: str, conv3d_rewritten: int) -> list[str]:
    """Plain-language warnings for the traps the report shows."""
    out = []
    if conv3d_rewritten:
        out.append(f"Conv3d ×{conv3d_rewritten} rewritten as Conv2d over frames (XNNPACK has no 3-D convolution)")
    for kind, n in sorted(report.pop("_conv3d_portable").items()):
        out.append(
            f"{kind} ×{n} (aten.convolution on a 5-D input) is not delegated to XNNPACK and the portable "
            "convolution kernel only handles 1-D/2-D convolutions: the program will fail when it runs"
            + ("; drop decompose_conv3d=False to rewrite it as Conv2d" if kind == "Conv3d" else "")
        )
    wide_portable = report.pop("_wide_portable")
    wide_delegated = report.pop("_wide_delegated")
    if wide_portable and flavour == "xnnpack":
        out.append(
            f"ops on >{XNN_MAX_DIMS}-D tensors kept on portable kernels (XNNPACK defines at most "
            f"{XNN_MAX_DIMS}-D tensors): {_ops(wide_portable)}"
        )
    if wide_delegated:
        out.append(
            f">{XNN_MAX_DIMS}-D tensors inside the XNNPACK delegate ({_ops(wide_delegated)}): "
            "loading the program will fail; reshape to at most 6 dims or use flavour 'portable'"
        )
    return out


# --------------------------------------------------------------------------- entry


#: loggers that chatter while executorch and torchao import and lower
CHATTER = (*IMPORT_CHATTER, "executorch")


def _rewritten(program: torch.export.ExportedProgram, flavour: str, *, decompose: bool,
               rewrite: bool) -> tuple[torch.export.ExportedProgram, dict[str, int], int]:
    """``program`` with the ops XNNPACK lacks rewritten (``rewrite``, XNNPACK flavour) and its Conv3d as Conv2d
    (``decompose``); with the rewrites' counts and how many convolutions were decomposed."""
    rewrites: dict[str, int] = {}
    if rewrite and flavour == "xnnpack":
        from edgest_executorch.rewrites import rewrite_for_xnnpack

        program, rewrites = rewrite_for_xnnpack(program)
    rewritten = 0
    if decompose:
        program, rewritten = decompose_conv3d(program)
    return program, rewrites, rewritten


def lower_to_pte(
    program: torch.export.ExportedProgram, path: Path, *, flavour: str, decompose: bool, rewrite: bool = True
) -> dict[str, Any]:
    """Lower ``program`` for ``flavour`` and write ``path``; returns the JSON-able details.

    With ``rewrite`` (XNNPACK flavour only) the ops XNNPACK lacks are first rewritten into ones
    it takes (:mod:`edgest_executorch.rewrites`).
    """
    with quiet_loggers(*CHATTER, no_warnings=True):
        from executorch.exir import to_edge_transform_and_lower

        from edgest.provenance import shared_provenance
        from edgest_executorch.retraces import skip_unchanged_retraces

        partitioner = [xnnpack_partitioner()] if flavour == "xnnpack" else None
        # its ~50 passes copied each node's provenance chain (squeezetime int8: -22 %), and re-traced graphs
        # they had not changed (squeezetime int8 lowering: -20 %); the .pte is byte-identical with both. The
        # rewrites run inside too: the program their decomposition makes is one ExecuTorch's first, functionalising
        # decomposition could only rebuild (vivit_fa_ti fp32 lowering 14.3 -> 11.7 s: the "all skipped" column of
        # bench/executorch_retraces.py before and after this)
        with shared_provenance(), skip_unchanged_retraces():
            program, rewrites, rewritten = _rewritten(program, flavour, decompose=decompose, rewrite=rewrite)
            edge = to_edge_transform_and_lower(program, partitioner=partitioner)
            report = delegation_report(edge.exported_program().graph_module)
            executorch_program = edge.to_executorch()
    with open(path, "wb") as fh:
        executorch_program.write_to_file(fh)
    warns = lowering_warnings(report, flavour, rewritten)
    return {"flavour": flavour, "xnnpack_rewrites": rewrites, **report, "warnings": warns}


def details_path(pte: Path) -> Path:
    """The JSON file written next to the ``.pte`` with the lowering details (read back on failure)."""
    return pte.with_name(pte.stem + ".details.json")


def write_details(pte: Path, details: dict[str, Any]) -> None:
    details_path(pte).write_text(json.dumps(details, indent=1))
