"""Op coverage for ``edgest check``: litert-torch's own decompositions and lowering registry, without converting.

``litert_torch.convert`` re-exports the module, decomposes it (``pre_convert_decomp``, then
``pre_lower_decomp``) and lowers each node through its registry of lowerings to MLIR, raising
"Lowering not found: OP" for a node with none. This module runs the same two decompositions on
the captured program and asks the same registry (``backend.lowerings.lookup``): an op with a
lowering is ``native`` (TFLite ops, run by the LiteRT interpreter with its XNNPACK delegate where
XNNPACK takes them), one without ``unsupported``. litert-torch's FX rewrites between the two
decompositions are not run, so an op they would rewrite first is judged as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgest.coverage import Coverage, is_work, judged_per_op

if TYPE_CHECKING:
    import torch


def coverage(program: torch.export.ExportedProgram) -> Coverage:
    """Decompose ``program`` as litert-torch does and judge each node by its lowering registry."""
    from edgest_litert.quiet import quiet

    with quiet():
        import litert_torch
        from litert_torch import fx_infra
        from litert_torch.backend import lowerings


    def decompose(prog: torch.export.ExportedProgram) -> torch.fx.Graph:
        with quiet():
            prog = fx_infra.safe_run_decompositions(prog, fx_infra.decomp.pre_convert_decomp(), can_skip=False)
            return fx_infra.safe_run_decompositions(prog, fx_infra.decomp.pre_lower_decomp(), can_skip=False).graph

    def judge(node: torch.fx.Node) -> tuple[str, str] | None:
        if not is_work(node):
            return None
        if lowerings.lookup(node.target) is not None:
            return "native", ""
        return "unsupported", f"litert-torch has no lowering for {node.target}"

    return judged_per_op("litert", program, decompose, judge,
                  f"litert-torch {litert_torch.__version__} lowering registry after its decompositions")
