"""The Core AI converter's own op registry: which ATen ops coreai-torch lowers, and which of a program's it does not.

``coreai_torch`` keeps one table of ATen lowerings (``_aten_to_core_resolver``, keyed
``conv2d.default``) and a list of composite ops its decomposition table preserves for it
(SDPA, silu, hardswish, pixel_shuffle, the reflection/replication pads, instance_norm). Its own
pre-conversion check (``validate_exported_program``) reads the same two, so these functions say
exactly what a conversion would refuse, without converting. For ``Target.coverage`` (edgest
check): every op in :func:`supported_ops` is native; any other ATen op left after the
converter's decompositions is unsupported.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any


def supported_ops() -> list[str]:
    """Every ATen op overload coreai-torch lowers (``aten.conv2d.default``, ...), sorted; its composite ops included."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from coreai_torch._aten_to_core import _aten_to_core_resolver
        from coreai_torch._decomp import _COMPOSITE_OPS

    ops = {f"aten.{key}" for key in _aten_to_core_resolver}
    ops |= {str(op) for op in _COMPOSITE_OPS}
    return sorted(ops)


def unsupported_ops(program: Any) -> dict[str, int]:
    """ATen ops (with node counts) of ``program``, decomposed as the converter takes it, that it cannot lower."""
    from coreai_torch import get_decomp_table

    known = set(supported_ops())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decomposed = program.run_decompositions(get_decomp_table())
    ops = Counter(str(n.target) for n in decomposed.graph.nodes
                  if n.op == "call_function" and str(n.target).startswith("aten."))
    return {op: count for op, count in sorted(ops.items()) if op not in known and not _plumbing(op)}


def _plumbing(op: str) -> bool:
    """Assertion ops the converter strips before converting, and symbolic-size queries (static shapes here)."""
    return op.startswith(("aten._assert", "aten.sym_constrain_range", "aten.sym_size", "aten.sym_numel", "aten.sym_stride"))


def coverage(program: Any) -> Any:
    """``Target.coverage`` for ``edgest check``: the program decomposed as the converter takes it, each piece judged
    by the converter's own table (native) or not in it (unsupported), reported per op of the captured program."""
    import importlib.metadata

    from edgest.coverage import is_work, judged_per_op

    known = set(supported_ops())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # coreai-torch warns at import that it "has only been validated with torch<=2.13.0"
        from coreai_torch import get_decomp_table

    def decompose(prog: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return prog.run_decompositions(get_decomp_table()).graph

    def judge(node: Any) -> tuple[str, str] | None:
        op = str(node.target)
        if not is_work(node) or not op.startswith("aten.") or _plumbing(op):
            return None
        return ("native", "") if op in known else ("unsupported", f"coreai-torch has no lowering for {op}")

    # the decomposition and the table are per op: judged on one node per distinct op signature (edgest.coverage_sample)
    return judged_per_op("coreai", program, decompose, judge,
                         f"coreai-torch {importlib.metadata.version('coreai-torch')} ATen lowering table; compute-unit "
                         "placement is decided on the device")
