"""Small programs that stand in for a big one when a target judges op coverage (:func:`edgest.coverage.judged_per_op`).

A toolchain's decomposition costs time per node, and a video model repeats the same few ops hundreds
of times. :func:`op_sample` keeps one node per distinct op signature (op, literal arguments, input
shapes, dtypes, strides); :func:`context_sample` one per distinct neighbourhood, for toolchains whose
verdict on a node depends on its producers and readers (ExecuTorch's partitioner and rewrites). Both
answer None where a sample could be judged differently from the whole graph (in-place ops,
subgraphs, symbolic shapes); the caller then judges the whole graph.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
from torch.export.graph_signature import (
    ExportGraphSignature,
    InputKind,
    InputSpec,
    OutputKind,
    OutputSpec,
    TensorArgument,
)

from edgest.coverage import is_work, op_key

# --------------------------------------------------------------------------- one sample per op signature

def _arg_key(arg: Any, constant: set[str]) -> Any:
    """A hashable stand-in for a node argument: a tensor by its kind, shape, dtype and strides; a literal by repr."""
    if isinstance(arg, torch.fx.Node):
        val = arg.meta.get("val")
        vals = val if isinstance(val, (list, tuple)) else (val,)
        if not all(isinstance(v, torch.Tensor) for v in vals):
            raise _NotSampled(f"{arg.name} is not a tensor")
        return ("param" if arg.name in constant else "tensor",
                *((tuple(v.shape), str(v.dtype), tuple(v.stride())) for v in vals))
    if isinstance(arg, (list, tuple)):
        return (type(arg).__name__, *(_arg_key(a, constant) for a in arg))
    if isinstance(arg, dict):
        return tuple(sorted((k, _arg_key(v, constant)) for k, v in arg.items()))
    return repr(arg)


class _NotSampled(Exception):
    """The program has something a per-op sample would judge differently from the whole graph."""


def op_signature(node: torch.fx.Node, constant: set[str]) -> tuple[Any, ...]:
    """What a decomposition of ``node`` can depend on: its op, its literal arguments, and each tensor argument's
    shape, dtype, strides and whether it is a parameter, buffer or constant of the program."""
    return (op_key(node), _arg_key(node.args, constant), _arg_key(node.kwargs, constant))


def _sampleable(program: torch.export.ExportedProgram) -> None:
    """Raise :class:`_NotSampled` when a node's decomposition may depend on more than its own inputs:
    in-place ops (functionalised across the graph), subgraphs (control flow), symbolic shapes."""
    if program.range_constraints or any(n.op in ("get_attr", "call_module") for n in program.graph.nodes):
        raise _NotSampled("symbolic shapes or subgraphs")
    for node in program.graph.nodes:
        schema = getattr(node.target, "_schema", None)
        if node.op == "call_function" and (schema is None or schema.is_mutable) and is_work(node):
            raise _NotSampled(f"{op_key(node)} is in place or not an ATen op")
        if node.op == "call_function" and isinstance(node.target, torch._ops.HigherOrderOperator):
            raise _NotSampled("a higher-order op")


def _live(program: torch.export.ExportedProgram) -> set[torch.fx.Node]:
    """The nodes the program's outputs depend on (the others are dead code, which a decomposition drops)."""
    stack, seen = [n for n in program.graph.nodes if n.op == "output"], set()
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(n.all_input_nodes)
    return seen


def op_sample(program: torch.export.ExportedProgram) -> tuple[torch.export.ExportedProgram, dict[str, str]] | None:
    """A program with one node per distinct :func:`op_signature` among ``program``'s work nodes, and each work
    node's name → its stand-in's name there; None where a per-op sample could be judged differently (see
    :func:`_sampleable`).

    Parameters, buffers and constants stay what they are; every other tensor a node reads becomes an input of
    the sample, and every node's result an output (so nothing is dead code). A toolchain decomposing the
    sample decomposes each op as it would in the whole graph, on a graph of tens of nodes instead of thousands.
    """
    try:
        _sampleable(program)
        return _build_sample(program)
    except _NotSampled:
        return None


def _build_sample(program: torch.export.ExportedProgram) -> tuple[torch.export.ExportedProgram, dict[str, str]]:
    specs = {s.arg.name: s for s in program.graph_signature.input_specs if hasattr(s.arg, "name")}
    constant = {name for name, s in specs.items() if s.kind != InputKind.USER_INPUT}
    firsts: dict[tuple[Any, ...], torch.fx.Node] = {}
    member: dict[str, torch.fx.Node] = {}
    live = _live(program)
    for node in program.graph.nodes:
        if is_work(node) and node in live:  # a dead node is removed by every decomposition: no stand-in, "removed"
            member[node.name] = firsts.setdefault(op_signature(node, constant), node)
    graph = torch.fx.Graph()
    reads = dict.fromkeys(a for n in firsts.values() for a in n.all_input_nodes)
    env, in_specs = _kept_weights(program, graph, reads, constant)
    in_specs += _user_inputs(graph, [a for a in reads if a.name not in constant], _read_by_many(firsts.values()), env,
                             lambda a, i: a.name)
    names: dict[str, str] = {}
    outs: list[torch.fx.Node] = []
    for node in firsts.values():
        copy_ = graph.node_copy(node, env.__getitem__)  # it reads sample inputs, never another stand-in
        names[node.name] = copy_.name
        # a multi-output op's items are outputs as they are: a split into every time step would add an op per step
        outs += [_used(graph, o) if o is copy_ and may_fold_away(node, constant) else o
                 for o in _sinks(graph, [copy_])]
    graph.output(tuple(outs))
    out_specs = [OutputSpec(OutputKind.USER_OUTPUT, TensorArgument(o.name), None) for o in outs]
    sample = _program(program, graph, ExportGraphSignature(in_specs, out_specs), {})
    return sample, {name: names[rep.name] for name, rep in member.items()}


#: ops that compute a new value from the tensors they read, whatever those hold: no toolchain drops one as an
#: identity, so a sample leaves its result as an output instead of reading it (:func:`may_fold_away`)
COMPUTES = frozenset({
    "convolution", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "linear", "mm", "bmm", "addmm", "baddbmm", "matmul", "scaled_dot_product_attention",
    "relu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "softmax", "_softmax", "log_softmax",
    "_log_softmax", "exp", "log", "sqrt", "rsqrt", "erf", "reciprocal",
    "batch_norm", "_native_batch_norm_legit_no_training", "layer_norm", "native_layer_norm", "group_norm",
    "native_group_norm",
})
#: arithmetic that computes when both operands are computed tensors (with a literal or a weight it may be x * 1)
ARITHMETIC = frozenset({"add", "sub", "mul", "div"})


def may_fold_away(node: torch.fx.Node, constant: set[str]) -> bool:
    """Whether a toolchain could drop ``node`` as an identity where its result is read, not output: a view, a
    copy, a cast, a reduction or pool over size-1 extents, arithmetic with a literal or a weight, and every op
    not known to compute (:data:`COMPUTES`, :data:`ARITHMETIC` between two computed tensors)."""
    schema = getattr(node.target, "_schema", None)
    name = schema.name.split("::")[-1] if schema is not None else ""
    if name in COMPUTES:
        return False
    if name in ARITHMETIC:
        tensors = [a for a in node.args if isinstance(a, torch.fx.Node)]
        return not (len(tensors) == len(node.args) == 2 and all(a.name not in constant for a in tensors))
    return True


def _used(graph: torch.fx.Graph, node: torch.fx.Node) -> torch.fx.Node:
    """``node + node``: read by an op, as in the whole graph, so a view or no-op the toolchain would fold there
    (a full-range slice, an identity cast) is not kept only because the sample's output is that value. Only for
    a node that :func:`may_fold_away`: on full SqueezeTime the reads were half the sample's nodes."""
    from torch._guards import detect_fake_mode

    val = node.meta["val"]
    fake = detect_fake_mode([val])
    if fake is None or val.dtype == torch.bool:
        return node
    used = graph.call_function(torch.ops.aten.add.Tensor, (node, node))
    with fake:
        used.meta = {"val": torch.ops.aten.add.Tensor(val, val)}
    return used


def _program(program: torch.export.ExportedProgram, graph: torch.fx.Graph, signature: Any,
             made: dict[str, Any]) -> torch.export.ExportedProgram:
    """An ExportedProgram of ``graph`` holding the parameters, buffers and constants of ``program`` it reads, and
    the constants in ``made``."""
    from torch.export.exported_program import ModuleCallEntry, ModuleCallSignature
    from torch.utils import _pytree

    targets = {s.target for s in signature.input_specs if s.kind != InputKind.USER_INPUT}
    users = sum(s.kind == InputKind.USER_INPUT for s in signature.input_specs)
    in_spec = _pytree.tree_flatten(((0,) * users, {}))[1]
    out_spec = _pytree.tree_flatten((0,) * len(signature.output_specs))[1]
    call = [ModuleCallEntry("", ModuleCallSignature(inputs=[], outputs=[], in_spec=in_spec, out_spec=out_spec))]
    root = torch.fx.GraphModule({}, graph)
    return torch.export.ExportedProgram(
        root, graph, signature, {k: v for k, v in program.state_dict.items() if k in targets}, {}, call,
        constants={**{k: v for k, v in program.constants.items() if k in targets}, **made}, verifiers=program.verifiers)


# --------------------------------------------------------------------------- one sample per op in its neighbourhood

#: a neighbourhood sample of at most this share of the program's work nodes is used; a bigger one saves too little
CONTEXT_SHARE = 0.5


def _constant_derived(program: torch.export.ExportedProgram) -> set[str]:
    """Names of the parameters, buffers and constants, and of the nodes computed from those alone (what a
    toolchain's constant folding may fold)."""

    out = {s.arg.name for s in program.graph_signature.input_specs
           if s.kind != InputKind.USER_INPUT and hasattr(s.arg, "name")}
    for node in program.graph.nodes:
        if node.op == "call_function" and all(a.name in out for a in node.all_input_nodes):
            out.add(node.name)
    return out


def _neighbourhood(node: torch.fx.Node, constant: set[str]) -> list[torch.fx.Node]:
    """``node``, the computed (not constant-derived) nodes it reads (a tuple item with the op making the tuple), and
    the nodes that read it, in graph order."""
    reads = [a for a in node.all_input_nodes if a.op == "call_function" and a.name not in constant]
    reads = reads if len(reads) <= MAX_READER_INPUTS else []  # a concatenation of every step: its inputs are inputs
    items = [a.args[0] for a in reads if op_key(a) == "getitem" and a.args[0].name not in constant]  # a tuple's op
    near = {node, *reads, *items, *_readers(node, constant)}
    return [n for n in node.graph.nodes if n in near]


#: a node reading more inputs than this (a concatenation of every step) is left out of its inputs' neighbourhoods,
#: and its own neighbourhood leaves out the nodes it reads
MAX_READER_INPUTS = 8


def _readers(node: torch.fx.Node, constant: set[str]) -> list[torch.fx.Node]:
    """One node of each kind (:func:`_near`) that reads ``node``, leaving out readers of many inputs."""
    kinds: dict[Any, torch.fx.Node] = {}
    for u in node.users:
        if u.op == "call_function" and len(u.all_input_nodes) <= MAX_READER_INPUTS:
            kinds.setdefault(_near(u, constant), u)
    return list(kinds.values())


def _near(n: torch.fx.Node, constant: set[str]) -> Any:
    """A neighbour's key: its op, tensor arguments and keyword literals; positional literals by type only (an
    unrolled loop's ``narrow(x, 1, t, 1)`` is one neighbour for every t)."""
    if n.op != "call_function":
        return n.op
    loose = tuple(_arg_key(a, constant) if isinstance(a, (torch.fx.Node, list, tuple)) else type(a).__name__
                  for a in n.args)
    return op_key(n), loose, _arg_key(n.kwargs, constant)


def _context_key(node: torch.fx.Node, constant: set[str], near: Callable[[torch.fx.Node], Any]) -> tuple[Any, ...]:
    """``node``'s :func:`op_signature` with its neighbours' keys (``near``: :func:`_near`, memoised; its readers' as
    a set)."""
    return (op_signature(node, constant),
            tuple(near(a) if a.name not in constant else "const" for a in node.all_input_nodes),
            frozenset(near(u) for u in node.users))


def context_sample(program: torch.export.ExportedProgram) -> tuple[torch.export.ExportedProgram, dict[str, str]] | None:
    """Like :func:`op_sample`, for a toolchain whose verdict on a node may depend on its neighbours (a rewrite of a
    two-node pattern, a partitioner checking a node's producer or users, constant folding of weights): one
    neighbourhood per distinct (node, producers, users) signature, each node with the computed nodes it reads and
    those that read it, and the constant-derived nodes they read copied as they are (so they still fold).
    Each node's verdict is read from its own neighbourhood's stand-in. None where the program cannot be sampled
    or the sample would not be much smaller (:data:`CONTEXT_SHARE`); then judge the whole graph.
    """
    try:
        _sampleable(program)
        constant = _constant_derived(program)
        firsts: dict[tuple[Any, ...], torch.fx.Node] = {}
        live = _live(program)
        keys: dict[torch.fx.Node, Any] = {}  # a concatenation of 128 steps is every step's neighbour: key it once

        def near(n: torch.fx.Node) -> Any:
            if n not in keys:
                keys[n] = _near(n, constant)
            return keys[n]

        member = {n.name: firsts.setdefault(_context_key(n, constant, near), n) for n in program.graph.nodes
                  if is_work(n) and n in live}
    except _NotSampled:
        return None
    keep = set().union(*(_neighbourhood(rep, constant) for rep in firsts.values()))
    if len(keep) > CONTEXT_SHARE * sum(map(is_work, program.graph.nodes)):
        return None
    try:
        sample, names = _build_context_sample(program, [n for n in program.graph.nodes if n in keep], constant)
    except _NotSampled:
        return None
    return sample, {name: names[rep] for name, rep in member.items()}


def _build_context_sample(program: torch.export.ExportedProgram, keep: list[torch.fx.Node],
                          constant: set[str]) -> tuple[torch.export.ExportedProgram, dict[torch.fx.Node, str]]:
    """The sample program of :func:`context_sample`: the nodes ``keep`` (the union of the representatives'
    neighbourhoods, in graph order) reading each other as in the program, and each one's stand-in name.

    What they read from outside ``keep``: parameters, buffers and constants as they are; a node computed from
    weights alone as a constant of its shape (the toolchain would fold it into one); anything else as an input.
    """
    inside = set(keep)
    read = dict.fromkeys(a for n in keep for a in n.all_input_nodes if a not in inside)
    graph, made = torch.fx.Graph(), {}
    shared, in_specs = _kept_weights(program, graph, read, constant)
    for i, node in enumerate(a for a in read if a.op != "placeholder" and a.name in constant):
        shared[node] = _placeholder(graph, node, f"const_{i}")
        val = node.meta["val"]
        made[f"_coverage_const_{i}"] = torch.zeros(val.shape, dtype=val.dtype)
        in_specs.append(InputSpec(InputKind.CONSTANT_TENSOR, TensorArgument(shared[node].name), f"_coverage_const_{i}"))
    in_specs += _user_inputs(graph, [a for a in read if a.name not in constant], _read_by_many(keep), shared,
                             lambda a, i: f"in_{i}")
    env: dict[torch.fx.Node, torch.fx.Node] = {}
    for n in keep:
        env[n] = graph.node_copy(n, lambda a: env.get(a) or shared[a])
    outs = _sinks(graph, list(env.values()))
    graph.output(tuple(outs))
    out_specs = [OutputSpec(OutputKind.USER_OUTPUT, TensorArgument(o.name), None) for o in outs]
    return _program(program, graph, ExportGraphSignature(in_specs, out_specs), made), {n: c.name for n, c in env.items()}


def _kept_weights(program: torch.export.ExportedProgram, graph: torch.fx.Graph, read: dict[torch.fx.Node, None],
                  constant: set[str]) -> tuple[dict[torch.fx.Node, torch.fx.Node], list[InputSpec]]:
    """Placeholders in ``graph`` for the parameters, buffers and constants of ``program`` among ``read`` (first, in
    program order, as in any exported program), and their input specs: a sample keeps them what they are."""
    specs = {s.arg.name: s for s in program.graph_signature.input_specs if hasattr(s.arg, "name")}
    kept, in_specs = {}, []
    for node in program.graph.nodes:
        if node.op == "placeholder" and node in read and node.name in constant:
            kept[node] = _placeholder(graph, node, node.name)
            s = specs[node.name]
            in_specs.append(InputSpec(s.kind, TensorArgument(kept[node].name), s.target, s.persistent))
    return kept, in_specs


def _read_by_many(nodes: Any) -> set[torch.fx.Node]:
    """The nodes that only nodes reading more than :data:`MAX_READER_INPUTS` (a concatenation of every time
    step) read among ``nodes``."""
    members = set(nodes)
    many = {n for n in members if len(n.all_input_nodes) > MAX_READER_INPUTS}
    read = {a for n in many for a in n.all_input_nodes}
    return {a for a in read if all(u in many for u in a.users if u in members)}


def _user_inputs(graph: torch.fx.Graph, args: list[torch.fx.Node], many: set[torch.fx.Node],
                 env: dict[torch.fx.Node, torch.fx.Node], name: Callable[[torch.fx.Node, int], str]) -> list[InputSpec]:
    """A placeholder in ``graph`` for each of ``args`` (into ``env``), and their input specs. The args of ``many``
    share one placeholder per shape, dtype and strides: a concatenation of 128 steps reads one input 128 times,
    the same op on the same shapes, instead of adding 128 inputs that every toolchain traces one by one."""
    specs, by_meta = [], {}
    for i, arg in enumerate(args):
        val = arg.meta.get("val")
        key = _layout(val) if arg in many and isinstance(val, torch.Tensor) else None
        if key is not None and key in by_meta:
            env[arg] = by_meta[key]
            continue
        env[arg] = _placeholder(graph, arg, name(arg, i))
        if key is not None:
            by_meta[key] = env[arg]
        specs.append(InputSpec(InputKind.USER_INPUT, TensorArgument(env[arg].name), None))
    return specs


def _layout(val: torch.Tensor) -> tuple[Any, ...]:
    """A tensor's shape, dtype and strides: what makes two steps' tensors interchangeable in a sample."""
    return tuple(val.shape), val.dtype, tuple(val.stride())


def _placeholder(graph: torch.fx.Graph, like: torch.fx.Node, name: str) -> torch.fx.Node:
    if not isinstance(like.meta.get("val"), torch.Tensor):
        raise _NotSampled(f"{like.name} is not a tensor")
    p = graph.placeholder(name)
    p.meta = {"val": like.meta["val"]}
    return p


def _sinks(graph: torch.fx.Graph, copies: list[torch.fx.Node]) -> list[torch.fx.Node]:
    """The tensors of the copied nodes nothing in the sample reads (a tuple's items through getitem): outputs.
    Of a tuple of more than :data:`MAX_READER_INPUTS` items (a split into every time step), one item per shape,
    dtype and strides: the op and its shapes are the same, without an output per step."""
    outs = []
    for c in copies:
        if c.users:
            continue
        val = c.meta.get("val")
        if isinstance(val, torch.Tensor):
            outs.append(c)
        elif isinstance(val, (list, tuple)):
            items = [(i, v) for i, v in enumerate(val) if isinstance(v, torch.Tensor)]
            if len(items) > MAX_READER_INPUTS:
                items = list({_layout(v): (i, v) for i, v in reversed(items)}.values())
            for i, v in sorted(items, key=lambda item: item[0]):
                item = graph.call_function(operator.getitem, (c, i))
                item.meta = {"val": v}
                outs.append(item)
    return outs
