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

from typing import Any


def _after(nodes: list[Any], start: set[str]) -> set[str]:
    """Names of ``start`` and every node that depends on one of them (``nodes`` in graph order)."""
    seen = set(start)
    for n in nodes:
        if any(getattr(a, "name", None) in seen for a in n.all_input_nodes):
            seen.add(n.name)
    return seen


def _before(nodes: list[Any], end: Any) -> set[str]:
    """Names of ``end`` and every node it depends on."""
    seen, todo = set(), [end]
    while todo:
        n = todo.pop()
        if n.name not in seen:
            seen.add(n.name)
            todo += list(n.all_input_nodes)
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
    calls = [n for n in nodes if n.op == "call_function"]
    loop: set[str] = set()
    for placeholder, result in zip(inputs[-states:], results[1:]):
        if hasattr(result, "name"):
            loop |= _after(calls, {placeholder.name}) & _before(nodes, result)
    values = loop | {p.name for p in inputs[-states:]}
    readers = {n.name for n in calls if any(a.name in values for a in n.all_input_nodes)}
    return [n.name for n in calls if n.name in loop | readers]
