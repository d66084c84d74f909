"""Op coverage: what a target will do with each ATen op of a captured program, asked before compiling.

A target answers :meth:`edgest.target.Target.coverage` from its toolchain's own knowledge (a
partitioner, an exporter's op registry, a frontend's convert table) without a full compile, as a
:class:`Coverage`: one :class:`OpVerdict` per ATen op overload and verdict, with how many nodes
and the source lines they come from. Verdicts, best first:

* ``native``: the target's own compiler or runtime runs it;
* ``delegated``: handed to an accelerator backend or delegate;
* ``fallback``: runs, on a slow path (reference/portable kernels, a CPU fallback, a float island);
* ``unsupported``: the target cannot lower or run it; a compile will fail.

Targets usually judge the nodes of a *transformed* program (their own decompositions, an edge
dialect); :func:`judged` maps each transformed node back to the captured node it came from
(``node.meta['from_node']``) so every verdict is about an op the user's model has.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: best first; the worst verdict among the pieces of one op is the op's verdict
VERDICTS = ("native", "delegated", "fallback", "unsupported")
#: ops that are graph plumbing, not work: never judged
PLUMBING = ("getitem", "sym_size", "sym_numel", "sym_stride", "_assert", "alias")


@dataclass(frozen=True)
class OpVerdict:
    """What a target does with the nodes of one ATen op overload (``aten.conv2d.default``)."""

    op: str
    verdict: str
    count: int = 1
    #: source lines (``model.py:42``, else ``module layers.0.conv``) of those nodes, first few
    where: tuple[str, ...] = ()
    #: why, when the verdict is not ``native`` (``left on portable kernels``, ``no convert rule``)
    note: str = ""


@dataclass(frozen=True)
class Coverage:
    """A target's verdict on every op of a program; ``status`` is ``known`` unless the target could not say."""

    target: str
    ops: tuple[OpVerdict, ...] = ()
    #: how the verdicts were reached (which partitioner or registry, which version) or why not known
    note: str = ""
    status: str = "known"  # known | not known | unavailable | failed | skipped

    def summary(self) -> dict[str, int]:
        """Node counts per verdict."""
        out = {v: 0 for v in VERDICTS}
        for o in self.ops:
            out[o.verdict] += o.count
        return {k: v for k, v in out.items() if v}

    def verdicts(self, op: str) -> dict[str, int]:
        """Node counts per verdict for ``op`` (``aten.cummax.default``; a prefix such as ``aten.cummax`` matches too)."""
        out: dict[str, int] = {}
        for o in self.ops:
            if o.op == op or o.op.startswith(op + "."):
                out[o.verdict] = out.get(o.verdict, 0) + o.count
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "status": self.status, "note": self.note, "summary": self.summary(),
                "ops": [asdict(o) for o in self.ops]}


def not_known(target: str, why: str, status: str = "not known") -> Coverage:
    """A coverage that says nothing about ops, and why."""
    return Coverage(target, (), why, status)


def op_key(node: torch.fx.Node) -> str:
    """The op overload a call node runs: ``aten.conv2d.default``; Python callables by name."""
    target = node.target
    name = str(target) if hasattr(target, "_schema") or hasattr(target, "_overloadname") else None
    return name or getattr(target, "__name__", str(target))


def is_work(node: torch.fx.Node) -> bool:
    """A call node that computes something (not graph plumbing such as ``getitem`` or ``sym_size``)."""
    if node.op != "call_function":
        return False
    key = op_key(node)
    return not any(p in key for p in PLUMBING)


_FILE = re.compile(r'File "([^"]+)", line (\d+)')


def source_line(node: torch.fx.Node) -> str:
    """Where in the user's code ``node`` came from: ``file.py:42 (layer1.0.conv)``, the line or the module alone, or ''."""
    trace = node.meta.get("stack_trace") or ""
    frames = [m for m in _FILE.finditer(trace) if "site-packages" not in m.group(1) and "/torch/" not in m.group(1)]
    line = f"{frames[-1].group(1).rsplit('/', 1)[-1]}:{frames[-1].group(2)}" if frames else ""
    stack = node.meta.get("nn_module_stack") or {}
    module = list(stack.values())[-1][0] if stack else ""
    if line and module:
        return f"{line} ({module})"
    return line or (f"module {module}" if module else "")


def worst(verdicts: Iterable[str]) -> str:
    """The worst of ``verdicts`` (``native`` for none)."""
    return max(verdicts, key=VERDICTS.index, default="native")


def origins(captured: torch.export.ExportedProgram, transformed: torch.fx.Graph) -> dict[str, str]:
    """Transformed node name → the captured node it was made from (its oldest ``from_node`` ancestor there)."""
    names = {n.name for n in captured.graph.nodes if n.op == "call_function"}
    out: dict[str, str] = {}
    for node in transformed.nodes:
        if node.op != "call_function":
            continue
        found, stack = None, list(node.meta.get("from_node") or [])
        while stack:  # depth-first to the oldest ancestor: the captured graph is the first one
            src = stack.pop()
            if src.name in names:
                found = src.name
            stack.extend(getattr(src, "from_node", None) or [])
        if found is None and node.name in names:
            found = node.name
        if found is not None:
            out[node.name] = found
    return out


Judge = Callable[["torch.fx.Node"], "tuple[str, str] | None"]


def decisions(captured: torch.export.ExportedProgram, transformed: torch.fx.Graph | None,
              judge: Judge) -> dict[str, tuple[str, str]]:
    """Captured node name → (verdict, note) from the judged nodes of ``transformed`` made from it (``captured``'s
    own nodes when None): the worst piece's verdict and note. A node with no judged piece left is absent."""
    graph = captured.graph if transformed is None else transformed
    back = {n.name: n.name for n in captured.graph.nodes} if transformed is None else origins(captured, transformed)
    per_node: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for node in graph.nodes:
        if node.op == "call_function" and node.name in back:
            verdict = judge(node)
            if verdict is not None:
                per_node[back[node.name]].append(verdict)
    decided = {}
    for name, pieces in per_node.items():
        bad = worst(v for v, _ in pieces)
        decided[name] = (bad, next(n for v, n in pieces if v == bad))
    return decided


REMOVED = ("native", "removed or folded by the toolchain")


def judged(target: str, captured: torch.export.ExportedProgram, transformed: torch.fx.Graph | None, judge: Judge,
           note: str = "", removed: tuple[str, str] = REMOVED) -> Coverage:
    """Judge the nodes of ``transformed`` (or of ``captured`` itself when None) and report per captured op.

    ``judge(node)`` returns (verdict, note) or None (plumbing, not judged). A captured node whose
    pieces get several verdicts gets the worst, with that piece's note; one with no judged piece
    left (folded, removed) gets ``removed``.
    """
    decided = decisions(captured, transformed, judge)
    return Coverage(target, grouped(captured, lambda n: decided.get(n.name, removed)), note)


#: judge one sample node per op signature (:mod:`edgest.coverage_sample`) instead of the whole graph; tests turn it off to compare
SAMPLE_OPS = True


def judged_per_op(target: str, captured: torch.export.ExportedProgram,
                  transform: Callable[[torch.export.ExportedProgram], torch.fx.Graph], judge: Judge, note: str = "",
                  removed: tuple[str, str] = REMOVED, sampler: Callable[..., Any] | None = None) -> Coverage:
    """:func:`judged` on ``transform(captured)``, for a target whose verdict on a node depends only on that node
    (its op, arguments and input shapes; a decomposition, then an op table), as when judging the whole graph.

    ``transform`` (the toolchain's own decomposition) runs on :func:`edgest.coverage_sample.op_sample`'s program, one node per
    distinct op signature, instead of the whole graph: its cost grows with the number of distinct ops, not
    of nodes. Where a sample could differ (in-place ops, subgraphs, symbolic shapes) the whole graph is used.
    ``sampler`` :func:`edgest.coverage_sample.context_sample` keeps each node's neighbours, for verdicts that depend on them.
    """
    from edgest.coverage_sample import op_sample

    sample = (sampler or op_sample)(captured) if SAMPLE_OPS else None
    if sample is None:
        return judged(target, captured, transform(captured), judge, note, removed)
    program, stand_in = sample
    decided = decisions(program, transform(program), judge)
    return Coverage(target, grouped(captured, lambda n: decided.get(stand_in.get(n.name, ""), removed)), note)


def grouped(captured: torch.export.ExportedProgram, verdict_of: Callable[[torch.fx.Node], tuple[str, str]]) -> tuple[OpVerdict, ...]:
    """One :class:`OpVerdict` per (op, verdict, note) over the captured program's work nodes, in graph order."""
    counts: dict[tuple[str, str, str], list[str]] = {}
    for node in captured.graph.nodes:
        if not is_work(node):
            continue
        verdict, note = verdict_of(node)
        counts.setdefault((op_key(node), verdict, note), []).append(source_line(node))
    return tuple(
        OpVerdict(op, verdict, len(lines), tuple(dict.fromkeys(w for w in lines if w))[:3], note)
        for (op, verdict, note), lines in counts.items()
    )


def program_ops(program: torch.export.ExportedProgram) -> list[dict[str, Any]]:
    """The captured program's work ops in graph order: op, node count, first source lines."""
    ops: dict[str, list[str]] = {}
    for node in program.graph.nodes:
        if is_work(node):
            ops.setdefault(op_key(node), []).append(source_line(node))
    return [{"op": op, "count": len(lines), "where": list(dict.fromkeys(w for w in lines if w))[:3]}
            for op, lines in ops.items()]


@dataclass(frozen=True)
class Preflight:
    """``edgest check``'s answer: the captured program's ops and each target's coverage of them."""

    model: str
    input_shape: tuple[int, ...]
    precision: str | None
    ops: tuple[dict[str, Any], ...]
    coverage: dict[str, Coverage] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    #: targets whose answer came from :mod:`edgest.coverage_cache` (no seconds: nothing was asked)
    cached: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "input_shape": list(self.input_shape), "precision": self.precision,
                "ops": list(self.ops), "targets": {t: c.to_dict() for t, c in self.coverage.items()},
                "seconds": self.seconds, "cached": list(self.cached)}
