"""Per-module SQNR of an artifact against eager PyTorch, and the module where the error starts.

The rule, in graph order (a module's output after everything it reads; an inner module before the
module around it when both end on the same tensor):

* each module's SQNR compares the artifact's value of its output with eager's, over every sample;
* its *drop* is the lowest SQNR among the probed modules it reads (a model input counts as exact,
  :data:`~edgest.checks.accuracy.SQNR_CAP_DB`) minus its own: how much error it added;
* the **culprit** is the first module whose SQNR is below the precision's accuracy limit
  (``LIMITS[precision]["min_sqnr_db"]``). Everything it reads is still within the limit (it
  comes earlier), so the error crosses the limit inside it. With nothing below the limit there
  is no culprit; the module with the largest drop is reported either way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.checks import accuracy
from edgest.debug.probes import Probe

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModuleDiff:
    """One module's output in the artifact vs eager: SQNR, max abs error, cosine, and what it added."""

    module: str
    kind: str
    node: str
    shape: tuple[int, ...]
    sqnr_db: float
    max_abs: float
    cosine: float
    #: the lowest SQNR among the probed modules this one reads, minus its own
    drop_db: float
    #: probed modules whose outputs this one reads (directly or through unprobed ops)
    reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class DebugResult:
    """What ``edgest debug`` found in one run: per-module figures in graph order and the culprit."""

    run_dir: str
    model: str
    target: str
    precision: str
    limit_db: float
    samples: int
    modules: tuple[ModuleDiff, ...]
    culprit: str | None
    #: one sentence: why that module (or why none)
    verdict: str
    largest_drop: str | None = None
    #: probed modules the artifact has no tensor for (fused away, or renamed past recognition)
    not_exposed: tuple[str, ...] = ()
    #: the run's own accuracy SQNR of the model output (from report.json), if it has one
    output_sqnr_db: float | None = None
    files: dict[str, str] = field(default_factory=dict)

    def module(self, name: str) -> ModuleDiff | None:
        """The figures of module ``name``, or None when it was not compared."""
        return next((m for m in self.modules if m.module == name), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


def upstream(graph: torch.fx.Graph, probes: Sequence[Probe]) -> dict[str, tuple[str, ...]]:
    """Probe module → the probed modules whose nodes it reads first when walking back from its node."""
    by_node: dict[str, list[str]] = {}
    for p in probes:
        by_node.setdefault(p.node, []).append(p.module)
    nodes = {n.name: n for n in graph.nodes}
    out: dict[str, tuple[str, ...]] = {}
    for p in probes:
        found: list[str] = []
        todo, seen = [a.name for a in nodes[p.node].all_input_nodes], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in by_node:
                found.append(by_node[name][-1])  # the outermost module ending there stands for them all
            else:
                todo.extend(a.name for a in nodes[name].all_input_nodes)
        out[p.module] = tuple(sorted(set(found)))
    return out


def _diff(probe: Probe, eager: Sequence[np.ndarray], actual: Sequence[np.ndarray]) -> dict[str, float]:
    got = [np.asarray(a, np.float32).reshape(np.shape(e)) for e, a in zip(eager, actual)]
    m = accuracy.compare(list(eager), got)
    return {"sqnr_db": round(m["sqnr_db"], 2), "max_abs": m["max_abs"], "cosine": m["cosine"]}


def compare_modules(probes: Sequence[Probe], eager: Mapping[str, Sequence[np.ndarray]],
                    actual: Mapping[str, Sequence[np.ndarray]], reads: Mapping[str, tuple[str, ...]]) -> list[ModuleDiff]:
    """Figures for every probe the artifact exposed (with matching sizes), in probe order."""
    out: list[ModuleDiff] = []
    sqnr: dict[str, float] = {}
    for p in probes:
        got = actual.get(p.module)
        if got is None or len(got) != len(eager[p.module]) or any(np.size(a) != np.size(e) for a, e in zip(got, eager[p.module])):
            continue
        d = _diff(p, eager[p.module], got)
        sqnr[p.module] = d["sqnr_db"]
        before = [sqnr[r] for r in reads.get(p.module, ()) if r in sqnr]
        drop = round((min(before) if before else accuracy.SQNR_CAP_DB) - d["sqnr_db"], 2)
        out.append(ModuleDiff(p.module, p.kind, p.node, p.shape, d["sqnr_db"], d["max_abs"], d["cosine"], drop,
                              tuple(r for r in reads.get(p.module, ()) if r in sqnr)))
    return out


def verdict(modules: Sequence[ModuleDiff], limit_db: float) -> tuple[str | None, str, str | None]:
    """(culprit module or None, one sentence, module with the largest drop or None) by the rule above."""
    # a module reading only the model input drops from exact (the cap): judge the largest drop among the others
    inner = [m for m in modules if m.reads] or list(modules)
    largest = max(inner, key=lambda m: m.drop_db).module if inner else None
    if not modules:
        return None, "no module output could be compared (the target exposed none of them)", None
    first = next((m for m in modules if m.sqnr_db < limit_db), None)
    if first is None:
        return None, (f"every module output is within the {limit_db:g} dB limit "
                      f"(lowest {min(m.sqnr_db for m in modules):.1f} dB); largest drop at '{largest}'"), largest
    src = ", ".join(f"'{r}'" for r in first.reads) or "the model input"
    return first.module, (f"'{first.module}' ({first.kind}) is the first module below the {limit_db:g} dB limit: "
                          f"{first.sqnr_db:.1f} dB, {first.drop_db:.1f} dB below what it reads ({src})"), largest
