"""A streaming step program's recurrence: the ops that quantizers keep float.

A ``--streaming`` compile quantises the step program ``(x_t, *state) -> (out_t, *next_state)``
(docs/streaming.md): output ``j + 1`` is fed back as input ``j + 1`` at the next step. Rounding
on that loop is not a one-off error: it is fed back and summed at every step (a running logit
sum, an LMU memory), so it grows over the stream while single steps still look fine. The rule
every program quantizer applies (:attr:`edgest.quantize.contract.Quantizer.states` says how many
inputs are state) is: the ops on a path from a state input to the same state's output, and the
ops that read a state value (a state input or one of those ops' outputs), stay float. The ops
that only feed the loop (the layers computing the update from ``x_t``) are quantised as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def loop_of(nodes: Sequence[tuple[str, Sequence[str]]], state_inputs: Sequence[str], state_results: Sequence[str]) -> list[str]:
    """The rule on any graph: names of the ``nodes`` that stay float, in graph order.

    ``nodes``: ``(name, names it reads)`` in topological order, where a read names another node or a
    graph input. ``state_inputs[j]`` is the input that ``state_results[j]`` (a node's name, or anything
    else when the state is passed through) is fed back into. Artifact quantizers describe their own
    graph this way (ONNX: a node reads the producers of its input tensors).
    """
    order = [name for name, _ in nodes]
    reads = {name: set(r) for name, r in nodes}
    loop: set[str] = set()
    for placeholder, result in zip(state_inputs, state_results):
        if result in reads:
            loop |= _after(order, reads, {placeholder}) & _before(reads, result)
    values = loop | set(state_inputs)
    return [n for n in order if n in loop or reads[n] & values]


def _after(order: list[str], reads: dict[str, set[str]], start: set[str]) -> set[str]:
    """``start`` and every node that depends on one of them (``order``: graph order)."""
    seen = set(start)
    for n in order:
        if reads[n] & seen:
            seen.add(n)
    return seen


def _before(reads: dict[str, set[str]], end: str) -> set[str]:
    """``end`` and every node (or input) it depends on."""
    seen, todo = set(), [end]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += list(reads.get(n, ()))
    return seen


def state_loop(graph: Any, states: int) -> list[str]:
    """Names of the ``call_function`` nodes of an FX ``graph`` that stay float in a streaming step program.

    ``states``: how many trailing placeholders are state inputs; the graph's output is then a tuple
    ``(out_t, *next_state)`` in the same order. Empty when ``states`` is 0 or the graph does not
    have that shape (a whole-input program).
    """
    nodes = list(graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    out = next((n for n in nodes if n.op == "output"), None)
    results = out.args[0] if out is not None and out.args else ()
    if states <= 0 or len(inputs) <= states or not isinstance(results, (tuple, list)) or len(results) != states + 1:
        return []
    calls = [(n.name, [a.name for a in n.all_input_nodes]) for n in nodes if n.op == "call_function"]
    return loop_of(calls, [p.name for p in inputs[-states:]], [getattr(r, "name", "") for r in results[1:]])
