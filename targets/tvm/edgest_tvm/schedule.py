"""Default CPU schedules for TVM 0.27's Relax pipeline, applied when nothing is tuned.

TVM 0.27's default ``llvm`` pipeline schedules nothing: every fused kernel is compiled as the
naive loop nest that ``LegalizeOps`` wrote (reduction loops innermost, scalar code), and
``tvm.s_tir.dlight.cpu`` only has GEMV and softmax/norm-style reduction rules. This module
adds one rule for the kernels that dominate video models — a single reduction block
(convolution, matmul, pooling, mean) with elementwise prologue/epilogue — that register-tiles
it the way a hand-written CPU kernel would:

* the output's innermost spatial axis is split by the SIMD width and vectorized,
* a second spatial axis (usually output channels / rows) is split by a small factor and
  unrolled, so each reduction step broadcasts one weight into several vector accumulators,
* the reduction loops move outside those two inner axes, the accumulator tile lives in a
  ``local`` cache (registers), and the fused epilogue (bias, batch-norm, activation) is
  inlined into the tile's write-back,
* the outer spatial loops are fused and parallelised (one task per tile row for the
  ``TVM_NUM_THREADS`` pool).

Elementwise kernels get their innermost loop vectorized. Anything the rule cannot analyse is
left to dlight's CPU rules or compiled unscheduled, so the rule can only make code faster,
never refuse a model. MetaSchedule-tuned records (``tune_trials`` > 0) replace these schedules
for the tasks they cover.
"""

from __future__ import annotations

from typing import Any


def _divisor_at_most(n: int, cap: int) -> int:
    for d in range(min(n, cap), 0, -1):
        if n % d == 0:
            return d
    return 1


def _extent(sch: Any, loop: Any) -> int | None:
    from tvm import tirx

    ext = sch.get(loop).extent
    return int(ext.value) if isinstance(ext, tirx.IntImm) else None


def _vectorize_innermost(sch: Any, block: Any, lanes: int) -> None:
    loops = sch.get_loops(block)
    if not loops:
        return
    ext = _extent(sch, loops[-1])
    if ext is None or ext < 2:
        return
    f = _divisor_at_most(ext, lanes)
    if f < 2:
        return
    inner = loops[-1] if f == ext else sch.split(loops[-1], factors=[None, f])[1]
    sch.vectorize(inner)


def _register_axis(sch: Any, anchor: Any, info: Any, spatial: list[tuple[Any, int]], vec_i: int) -> int | None:
    """The spatial axis to unroll into several accumulators.

    Prefer one that indexes an operand which does not move with the vector axis (the weight
    of a convolution or matmul): each reduction step then broadcasts one scalar of it into
    every accumulator instead of loading another vector. Longest such axis, earliest on ties.
    """
    from tvm.tirx.analysis import undefined_vars

    s_vars = [it.var for it in info.iters if it.kind == "S"]
    vec_var = s_vars[vec_i]

    def uses(region: Any, var: Any) -> bool:
        return any(u.same_as(var) for rng in region.region for u in undefined_vars(rng.min))

    reads = list(sch.get(anchor).reads)
    broadcast = set()
    for i, v in enumerate(s_vars):
        if i != vec_i and spatial[i][1] > 1 and any(uses(rd, v) and not uses(rd, vec_var) for rd in reads):
            broadcast.add(i)
    pool = broadcast or {i for i, (_, e) in enumerate(spatial) if i != vec_i and e > 1}
    if not pool:
        return None
    return max(pool, key=lambda i: (spatial[i][1], -i))


def schedule_anchor_reduction(func: Any, lanes: int) -> Any | None:
    """Register-tile the single reduction block of ``func``; None when the rule does not apply."""
    from tvm import s_tir
    from tvm.s_tir.dlight.analysis import normalize_prim_func

    sch = s_tir.Schedule(func)
    infos = normalize_prim_func(sch)
    if not infos:
        return None
    reductions = [i for i, b in enumerate(infos) if not b.is_injective()]
    if len(reductions) != 1:
        return None
    r = reductions[0]
    if any(k not in "SR" for k in infos[r].dom_kind()):
        return None
    anchor = infos[r].block_rv
    # the elementwise epilogue chain collapses into its last block
    epilogue = [b.block_rv for b in infos[r + 1:]]
    for b in epilogue[:-1]:
        try:
            sch.compute_inline(b)
        except Exception:  # noqa: BLE001 - a non-inlinable block just stays a separate loop nest
            pass
    loops = []
    for it in infos[r].iters:
        ext = it.dom
        if not isinstance(ext, int):
            ext = getattr(ext, "value", None)
        if ext is None:
            return None
        loops.append((it.loop_rv, it.kind, int(ext)))
    spatial = [(lp, e) for lp, k, e in loops if k == "S"]
    reduce = [lp for lp, k, e in loops if k == "R"]
    if not spatial or not reduce:
        return None
    # vector axis: innermost spatial loop longer than 1 (the output's contiguous dim)
    vec_i = max((i for i, (_, e) in enumerate(spatial) if e > 1), default=None)
    if vec_i is None:
        return None
    fv = _divisor_at_most(spatial[vec_i][1], lanes)
    # register axis: unrolled into up to 4 accumulators (see _register_axis)
    reg_i = _register_axis(sch, anchor, infos[r], spatial, vec_i)
    fr = _divisor_at_most(spatial[reg_i][1], 4) if reg_i is not None else 1

    outer, inner = [], []
    for i, (lp, e) in enumerate(spatial):
        if i == vec_i:
            o, v = sch.split(lp, factors=[None, fv])
            outer.append(o)
            vec_loop = v
        elif i == reg_i and fr > 1:
            o, v = sch.split(lp, factors=[None, fr])
            outer.append(o)
            inner.append(v)
        else:
            outer.append(lp)
    inner.append(vec_loop)
    sch.reorder(*outer, *reduce, *inner)
    fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
    acc = sch.cache_write(anchor, 0, "local")
    sch.reverse_compute_at(acc, fused, preserve_unit_loops=True)
    if epilogue:
        try:
            sch.reverse_compute_inline(epilogue[-1])
        except Exception:  # noqa: BLE001 - keep the epilogue as its own (vectorized) loop nest
            _vectorize_innermost(sch, epilogue[-1], lanes)
    sch.parallel(fused)
    if len(inner) > 1:
        sch.unroll(inner[0])
    if fv > 1:
        sch.vectorize(vec_loop)
    sch.decompose_reduction(anchor, reduce[0])
    acc_loops = sch.get_loops(acc)
    if len(acc_loops) > 1:
        if (_extent(sch, acc_loops[-1]) or 0) > 1:
            sch.vectorize(acc_loops[-1])
        for lp in acc_loops[1:-1]:
            sch.unroll(lp)
    # the prologue (padding, layout copies) keeps its loop nest, vectorized
    for b in infos[:r]:
        try:
            _vectorize_innermost(sch, b.block_rv, lanes)
        except Exception:  # noqa: BLE001
            pass
    return sch


def schedule_elementwise(func: Any, lanes: int) -> Any | None:
    """Vectorize the innermost loop of each block of an all-spatial kernel; None when not applicable."""
    from tvm import s_tir
    from tvm.s_tir.dlight.analysis import normalize_prim_func

    sch = s_tir.Schedule(func)
    infos = normalize_prim_func(sch)
    if not infos or not all(b.is_injective() for b in infos):
        return None
    for b in infos:
        try:
            _vectorize_innermost(sch, b.block_rv, lanes)
        except Exception:  # noqa: BLE001 - a block that cannot vectorize stays scalar
            pass
    return sch


def default_rules(lanes: int) -> list[Any]:
    """dlight ScheduleRules, in order: edgest's anchor-reduction tiling, dlight CPU GEMV, elementwise, dlight reduction."""
    from tvm.s_tir import dlight as dl

    class AnchorReduction(dl.ScheduleRule):
        def apply(self, func: Any, target: Any, tunable: bool) -> Any:
            if target.kind.name != "llvm":
                return None
            try:
                return schedule_anchor_reduction(func, lanes)
            except Exception:  # noqa: BLE001 - unanalysable kernel: the next rule or no schedule
                return None

    class Elementwise(dl.ScheduleRule):
        def apply(self, func: Any, target: Any, tunable: bool) -> Any:
            if target.kind.name != "llvm":
                return None
            try:
                return schedule_elementwise(func, lanes)
            except Exception:  # noqa: BLE001
                return None

    # dlight's Reduction rule last: it takes the multi-reduction kernels (softmax, layer norm);
    # before the anchor rule it would also take convolutions and LLVM then needs minutes for them
    return [AnchorReduction(), dl.cpu.GEMV(), Elementwise(), dl.cpu.Reduction()]
