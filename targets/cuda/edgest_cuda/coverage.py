"""Op coverage for ``edgest check``: Inductor's own lowering table, without compiling.

AOTInductor decomposes the program with Inductor's decomposition table, then lowers each node
through its ``lowerings``: most become generated kernels (Triton on the GPU, C++ on the CPU),
fused with their neighbours; some are registered as *fallbacks* (``make_fallback``: the ATen
kernel is called as it is, no fusion), and an op with no lowering at all is also run through its
ATen kernel (``implicit_fallbacks``). This module runs the same decomposition and reads the same
tables: generated → ``native``, ATen-kernel fallback → ``fallback``. Inductor rejects nothing here.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from edgest.coverage import Coverage, is_work, judged_per_op

if TYPE_CHECKING:
    import torch


def coverage(program: torch.export.ExportedProgram) -> Coverage:
    """Decompose ``program`` as Inductor does and judge each node by its lowering and fallback tables."""
    import torch
    from torch._inductor import config, decomposition, lowering

    def decompose(prog: torch.export.ExportedProgram) -> torch.fx.Graph:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return prog.run_decompositions(decomposition.select_decomp_table()).graph

    def judge(node: torch.fx.Node) -> tuple[str, str] | None:
        if not is_work(node):
            return None
        op = node.target
        if op in lowering.lowerings and op not in lowering.fallbacks:
            return "native", ""
        if op in lowering.fallbacks or config.implicit_fallbacks:
            return "fallback", "runs its ATen kernel unfused (an Inductor fallback)"
        return "unsupported", "no Inductor lowering and implicit fallbacks are off"

    return judged_per_op("cuda", program, decompose, judge, f"Inductor lowering table (torch {torch.__version__})")
