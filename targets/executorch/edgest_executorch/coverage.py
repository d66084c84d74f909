"""Op coverage for ``edgest check``: the XNNPACK partitioner's tags on the edge program, without lowering.

The program goes through what :func:`edgest_executorch.lowering.lower_to_pte` does before
delegation (the XNNPACK rewrites, Conv3d as Conv2d, the edge dialect with the partitioner's
ops kept whole; its verifier off, so an op outside Core ATen is named instead of failing the whole
program), then the partitioner tags the nodes it would delegate. Nothing is preprocessed or
serialised, so this takes the edge conversion's seconds, not the lowering's.

* tagged by the partitioner → ``delegated`` (XNNPACK);
* untagged, with a kernel in the ExecuTorch runtime's operator registry (portable/optimized
  kernels, the ``out`` variant of the op) → ``fallback``; in the portable flavour these are the plan;
* untagged with no kernel (outside the Core ATen opset, ``to_edge`` also refuses it), and Conv3d
  left on the portable convolution kernel (it handles 1-D/2-D only and fails when the program
  runs) → ``unsupported``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from edgest.coverage import Coverage

if TYPE_CHECKING:
    import torch


@lru_cache(maxsize=1)
def runtime_kernels() -> frozenset[str]:
    """Operator names the ExecuTorch runtime has kernels for (``aten::add.out``)."""
    from executorch.extension.pybindings import portable_lib

    return frozenset(portable_lib._get_operator_names())


def has_kernel(target: Any) -> bool:
    """Whether the runtime has a kernel for an edge op (its ``out`` variant, as ``to_executorch`` makes it)."""
    from executorch.exir.operator.convert import to_out_variant

    op = getattr(target, "_op", target)
    try:
        out, _ = to_out_variant(op)
    except Exception:  # noqa: BLE001 - no out variant: no kernel can run it
        return False
    return f"{out._schema.name}.{out._overloadname}" in runtime_kernels()


def is_core_aten(target: Any) -> bool:
    """Whether an (edge) op is in the Core ATen opset the edge dialect's verifier accepts outside a delegate."""
    import torch

    op = getattr(target, "_op", target)
    tags = getattr(op, "tags", None)
    return tags is None or torch.Tag.core in tags or not str(op).startswith("aten.") or str(op).startswith("aten.sym_")


def edge_program(program: torch.export.ExportedProgram, flavour: str, decompose: bool, rewrite: bool) -> tuple[Any, Any]:
    """(edge program, partitioner or None): what ``to_edge_transform_and_lower`` makes before delegating."""
    from executorch.exir import EdgeCompileConfig
    from executorch.exir.program._program import _gen_edge_manager_for_partitioners

    from edgest_executorch.lowering import decompose_conv3d, xnnpack_partitioner
    from edgest_executorch.retraces import skip_unchanged_retraces

    if rewrite and flavour == "xnnpack":
        from edgest_executorch.rewrites import rewrite_for_xnnpack

        program, _ = rewrite_for_xnnpack(program)
    if decompose:
        program, _ = decompose_conv3d(program)
    partitioner = xnnpack_partitioner() if flavour == "xnnpack" else None
    with skip_unchanged_retraces():  # as lower_to_pte does: a decomposition that could change nothing is not re-run
        manager = _gen_edge_manager_for_partitioners({"forward": [partitioner] if partitioner else []},
                                                     {"forward": program}, EdgeCompileConfig(_check_ir_validity=False),
                                                     None, False)
    return manager.exported_program(), partitioner


def _judge(node: torch.fx.Node) -> tuple[str, str] | None:
    from edgest.coverage import is_work
    from edgest_executorch.lowering import _is_conv3d

    if not is_work(node) or "call_delegate" in str(node.target):
        return None
    if "delegation_tag" in node.meta:
        return "delegated", "XNNPACK"
    if _is_conv3d(node):
        return "unsupported", "Conv3d on the portable convolution kernel (1-D/2-D only): fails when it runs"
    if has_kernel(node.target):
        return "fallback", "not delegated: runs on ExecuTorch's portable kernels"
    if not is_core_aten(node.target):
        return "unsupported", "not delegated, no ExecuTorch kernel, outside the Core ATen opset (to_edge refuses it)"
    return "unsupported", "not delegated and no ExecuTorch kernel for it"


def coverage(program: torch.export.ExportedProgram, flavour: str, decompose: bool, rewrite: bool) -> Coverage:
    """The coverage of ``program`` for the given target options (see the module docstring)."""
    import importlib.metadata

    from edgest.coverage import judged_per_op
    from edgest.coverage_sample import context_sample
    from edgest.quiet import quiet_loggers
    from edgest_executorch.lowering import CHATTER

    def tagged(prog: torch.export.ExportedProgram) -> torch.fx.Graph:
        edge, partitioner = edge_program(prog, flavour, decompose, rewrite)
        return partitioner.partition(edge).tagged_exported_program.graph if partitioner is not None else edge.graph

    how = "XNNPACK partitioner on the edge program" if flavour == "xnnpack" else "portable flavour: no delegate"
    with quiet_loggers(*CHATTER, no_warnings=True):
        # each node judged in its neighbourhood (rewrites of two-node patterns, partitioner checks on a node's
        # producer and users, weights folded as constants), once per distinct neighbourhood: on a model that
        # repeats a block (an unrolled time loop) the edge passes see a few hundred nodes, not thousands
        return judged_per_op("executorch", program, tagged, _judge,
                             f"{how}; kernels from the runtime's registry (executorch {importlib.metadata.version('executorch')})",
                             sampler=context_sample)
