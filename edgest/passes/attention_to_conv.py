"""``attention-to-conv``: exact rewrite of multi-head self-attention to channels-first 1x1 convs.

In the spirit of Apple's ml-ane-transformers: q/k/v and output projections become 1x1
convolutions on a ``(B, C, 1, S)`` layout, heads are explicit channel slices (attention per
head, concatenated), and the layout changes once at the block's entry and once at its exit.
The replacement modules live in :mod:`edgest.passes.ane_attention` (imported lazily: this
module must stay importable without torch, for ``edgest list passes``).

Two levels:

* before capture, :meth:`AttentionToConvPass.rewrite_module` swaps ``nn.MultiheadAttention``
  and timm-style ``Attention`` modules (see :func:`rewrite_modules`);
* on the captured program, :meth:`AttentionToConvPass.run` finds the pattern the export keeps,
  ``aten.linear`` projections around ``aten.scaled_dot_product_attention`` or around
  ``matmul → softmax → matmul``, and replaces each block with one module, then re-exports.
  Which channels belong to which head and which rows are which tokens is not guessed from op
  names: the layout ops between the projections and the attention are replayed on index
  tensors, so any reshape/permute/unbind/split spelling is understood, or the block is left
  alone with the reason. Cross-attention, masks, qk-norm and attention probabilities used
  outside the block are left alone.

Options: ``form`` ("matmul" default, or "einsum": ml-ane-transformers' exact einsum form),
``norm`` (default true: a LayerNorm feeding only the block is moved inside it, computed over
channels), ``verify`` (default true: compare the rewritten program on the example input).
"""

from __future__ import annotations

import operator
from math import prod as _numel
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgest.errors import Unsupported
from edgest.passes.base import Pass, PassContext, PassResult

if TYPE_CHECKING:
    import torch
    from torch.fx import GraphModule, Node

_LAYOUT = frozenset({
    "view", "reshape", "_unsafe_view", "permute", "transpose", "t", "unsqueeze", "squeeze", "contiguous",
    "clone", "alias", "detach", "unflatten", "flatten", "select", "slice", "narrow", "unbind", "split",
    "split_with_sizes", "chunk", "movedim", "getitem",
})
_SOFTMAX = frozenset({"softmax", "_softmax", "_safe_softmax"})
_MATMUL = frozenset({"matmul", "bmm"})
_MASKING = frozenset({"add", "sub", "masked_fill", "where", "baddbmm"})
_OURS = "edgest.passes.ane_attention."


class LeaveAlone(Exception):
    """An attention-like subgraph the rewrite does not handle; the message is the reason."""


def _op(node: Any) -> str:
    """``aten.view.default`` → ``view``; ``operator.getitem`` → ``getitem``; anything else → ''."""
    if getattr(node, "op", None) != "call_function":
        return ""
    if node.target is operator.getitem:
        return "getitem"
    s = str(node.target)
    return s.split(".")[1] if s.startswith("aten.") else ""


def _scale_of(node: Node) -> float | None:
    """The factor of a multiplication/division by a Python number, else None."""
    if _op(node) in ("mul", "div") and len(node.args) == 2 and isinstance(node.args[1], (int, float)) \
            and not isinstance(node.args[1], bool):
        return float(node.args[1]) if _op(node) == "mul" else 1.0 / float(node.args[1])
    return None


def _shape(node: Node) -> tuple[int, ...]:
    val = node.meta.get("val")
    if val is None or not hasattr(val, "shape"):
        raise LeaveAlone("no shape information in the graph")
    return tuple(int(d) for d in val.shape)


def _back_to_linear(t: Node, what: str) -> tuple[Node, list[Node], float]:
    """Walk from an attention input back to its ``aten.linear``: (linear, layout chain in order, scale)."""
    chain, scale, n = [], 1.0, t
    while _op(n) != "linear":
        f = _scale_of(n)
        if f is None and _op(n) not in _LAYOUT:
            if _conv_upstream(n):
                raise LeaveAlone("projections are already convolutions")
            found = f"aten.{_op(n)}" if _op(n) else n.op
            raise LeaveAlone(f"{what} is not a linear projection followed by layout ops (found {found})")
        scale *= f if f is not None else 1.0
        chain.append(n)
        n = n.args[0]
        if not hasattr(n, "op"):
            raise LeaveAlone(f"{what} is not a linear projection followed by layout ops")
    return n, chain[::-1], scale


def _conv_upstream(n: Node, hops: int = 3) -> bool:
    """Whether a convolution is among ``n`` and its ancestors up to ``hops`` steps back."""
    frontier = [n]
    for _ in range(hops + 1):
        if any(_op(f) in ("conv1d", "conv2d", "convolution") for f in frontier):
            return True
        frontier = [a for f in frontier for a in f.all_input_nodes]
    return False


def _index_map(start: Node, chain: list[Node]) -> torch.Tensor:
    """Replay ``chain`` on ``arange`` over ``start``'s shape: each output element's flat index in ``start``."""
    import torch
    from torch.fx.node import map_arg

    env: dict[Node, Any] = {start: torch.arange(_numel(_shape(start))).reshape(_shape(start))}
    for n in chain:
        if _scale_of(n) is not None:
            env[n] = env[n.args[0]]
            continue
        try:
            args, kwargs = map_arg((n.args, n.kwargs), lambda a: env[a])
        except KeyError:
            raise LeaveAlone("a layout op depends on another tensor") from None
        target = torch.ops.aten.reshape.default if _op(n) in ("view", "_unsafe_view") else n.target
        env[n] = target(*args, **kwargs)
    return env[chain[-1]] if chain else env[start]


def _const(gm: GraphModule, node: Any) -> torch.Tensor | None:
    """Value of a node computed from parameters only (e.g. a chunk of a weight); None for None."""
    from torch.fx.node import map_arg

    if node is None:
        return None
    if node.op == "get_attr":
        obj: Any = gm
        for part in node.target.split("."):
            obj = getattr(obj, part)
        return obj.detach()
    if node.op != "call_function":
        raise LeaveAlone("a projection weight is not a constant")
    args, kwargs = map_arg((node.args, node.kwargs), lambda a: _const(gm, a))
    return node.target(*args, **kwargs)


def _module_of(node: Node) -> tuple[str, str, bool]:
    """(dotted path, class name, inside one of our modules) of the innermost module around ``node``."""
    stack = [(path, cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}")
             for path, cls in (node.meta.get("nn_module_stack") or {}).values()]
    ours = any(cls.startswith(_OURS) for _, cls in stack)
    path, cls = stack[-1] if stack else ("", "attention")
    return path or "<root>", cls.rsplit(".", 1)[-1], ours


@dataclass
class _Plan:
    where: str
    kind: str
    root: Node
    in_order: str
    exit: Node
    out_order: str
    batch: int
    tokens: int
    heads: int
    dqk: int
    dv: int
    scale: float
    weights: tuple[Any, ...]  # w_qkv, b_qkv, w_proj, b_proj
    norm: tuple[Any, ...] | None = None  # (weight, bias, eps) when a LayerNorm was moved inside
    internal: set[Any] = field(default_factory=set)


def _core_inputs(core: Node) -> tuple[Node, Node, Node, float, bool, set[Node], Node]:
    """(q, k or k^T, v, scale, k is transposed, core nodes, output) of an SDPA or softmax core."""
    if _op(core) == "scaled_dot_product_attention":
        names = ("attn_mask", "dropout_p", "is_causal")
        extra = dict(zip(names, core.args[3:]))
        extra.update({k: v for k, v in core.kwargs.items()})
        if extra.get("attn_mask") is not None or extra.get("is_causal"):
            raise LeaveAlone("masked or causal attention")
        if extra.get("dropout_p"):
            raise LeaveAlone("attention dropout")
        if extra.get("enable_gqa"):
            raise LeaveAlone("grouped-query attention")
        scale = extra.get("scale")
        scale = float(scale) if scale is not None else _shape(core.args[0])[-1] ** -0.5
        return core.args[0], core.args[1], core.args[2], scale, False, {core}, core
    dim = core.args[1] if len(core.args) > 1 else core.kwargs.get("dim", -1)
    if dim not in (-1, len(_shape(core)) - 1):
        raise LeaveAlone("softmax is not over the last axis")
    nodes, n, scale = {core}, core.args[0], 1.0
    while _op(n) not in _MATMUL:
        if _op(n) in _MASKING:
            raise LeaveAlone("masked attention")
        f = _scale_of(n)
        if f is None:
            raise LeaveAlone(f"softmax input is not a scaled q @ k^T (found {_op(n) or n.op})")
        nodes.add(n)
        scale, n = scale * f, n.args[0]
    users = list(core.users)
    if len(users) != 1 or _op(users[0]) not in _MATMUL or users[0].args[0] is not core:
        raise LeaveAlone("attention probabilities used outside the block")
    mm1, mm2 = n, users[0]
    return mm1.args[0], mm1.args[1], mm2.args[1], scale, True, nodes | {mm1, mm2}, mm2


def _rows_of(idx: torch.Tensor, c: int) -> torch.Tensor | None:
    """Source rows of an index map whose last axis is the source's channel axis, unchanged; else None."""
    import torch

    idx = idx.reshape(-1, c)
    rows = idx[:, 0] // c
    return rows if bool((idx == rows[:, None] * c + torch.arange(c)).all()) else None


def _token_order(root_rows: torch.Tensor, batch: int, tokens: int, order: str) -> torch.Tensor:
    """Canonical token id (b*S + s) of each root row, the root's rows being in ``order`` (bs or sb)."""
    import torch

    r = torch.arange(batch * tokens)
    canon = r if order == "bs" else (r % batch) * tokens + r // batch
    return canon[root_rows]


def _find_entry(x: Node, rows: torch.Tensor, batch: int, seq: int) -> tuple[Node, list[Node], str, torch.Tensor]:
    """The farthest ancestor of ``x`` through layout ops whose rows are batch x tokens or tokens x batch."""
    c = _shape(x)[-1]
    cands, n = [(x, [])], x
    while _op(n) in _LAYOUT and _op(n) != "getitem" and hasattr(n.args[0], "op"):
        cands.append((n.args[0], [n] + cands[-1][1]))
        n = n.args[0]
    for cand, chain in reversed(cands):
        if _shape(cand)[-1] != c or _numel(_shape(cand)) != _numel(_shape(x)):
            continue
        root_rows = _rows_of(_index_map(cand, chain), c)
        for order in ("bs", "sb") if root_rows is not None else ():
            tok = _token_order(root_rows[rows], batch, seq, order)
            if bool((tok // seq == tok[:, :1] // seq).all()):
                return cand, chain, order, tok
    raise LeaveAlone("tokens are not laid out as batch x tokens or tokens x batch")


def _find_exit(proj: Node, p_tok: torch.Tensor, batch: int, seq: int) -> tuple[Node, list[Node], str]:
    """The farthest single-user layout descendant of the output projection with rows in bs or sb order."""
    import torch

    c = _shape(proj)[-1]
    cands, n = [(proj, [])], proj
    while len(n.users) == 1 and _op(next(iter(n.users))) in _LAYOUT - {"getitem", "unbind", "split", "chunk", "split_with_sizes"}:
        n = next(iter(n.users))
        cands.append((n, cands[-1][1] + [n]))
    for cand, chain in reversed(cands):
        if _shape(cand)[-1] != c or _numel(_shape(cand)) != batch * seq * c:
            continue
        t_rows = _rows_of(_index_map(proj, chain), c)
        for order in ("bs", "sb") if t_rows is not None else ():
            if bool((p_tok[t_rows] == _token_order(torch.arange(batch * seq), batch, seq, order)).all()):
                return cand, chain, order
    raise LeaveAlone("output tokens are not laid out as batch x tokens or tokens x batch")


def _projections(core: Node) -> tuple[list[Node], list[Any], float, float, set[Node], Node]:
    """The q, k, v projections behind an attention core, their index maps, scales, internal nodes and the output."""
    q_in, k_in, v_in, scale, k_transposed, internal, out = _core_inputs(core)
    lins, maps, v_scale = [], [], 1.0
    for t, what in ((q_in, "q"), (k_in, "k"), (v_in, "v")):
        lin, chain, s = _back_to_linear(t, what)
        internal |= set(chain) | {lin}
        idx = _index_map(lin, chain)
        maps.append(idx.transpose(-1, -2) if what == "k" and k_transposed else idx)
        lins.append(lin)
        if what == "v":
            v_scale = s
        else:
            scale *= s
    if any(lin.args[0] is not lins[0].args[0] for lin in lins):
        raise LeaveAlone("cross-attention")
    if len({m.shape[:-1] for m in maps}) != 1:
        raise LeaveAlone("q, k and v have different batch/token shapes")
    return lins, maps, scale, v_scale, internal, out


def _rows_and_channels(maps: list[Any], lins: list[Node]) -> tuple[Any, list[Any]]:
    """Each (Nb, S, d) element of q, k, v as (row, channel) of its projection's output; refuses mixed layouts."""
    seq, rows, chans = maps[0].shape[-2], None, []
    for idx, lin in zip(maps, lins):
        idx, n_out = idx.reshape(-1, seq, idx.shape[-1]), _shape(lin)[-1]
        r, c = idx // n_out, idx % n_out
        if not bool((r == r[:, :, :1]).all()) or not bool((c == c[:, :1, :]).all()):
            raise LeaveAlone("a projection's layout mixes tokens and channels")
        if rows is not None and not bool((r[:, :, 0] == rows).all()):
            raise LeaveAlone("q, k and v token orders differ")
        rows = r[:, :, 0]
        chans.append(c[:, 0, :])
    return rows, chans


def _output_projection(out: Node) -> tuple[Node, list[Node]]:
    """Attention output → layout ops → the output projection: the projection node and the ops between."""
    chain_o, n = [], out
    while True:
        users = list(n.users)
        if len(users) != 1:
            raise LeaveAlone("attention output used outside the block")
        if _op(users[0]) == "linear" and users[0].args[0] is n:
            return users[0], chain_o
        if _op(users[0]) not in _LAYOUT:
            raise LeaveAlone(f"no output projection after the attention (found {_op(users[0]) or users[0].op})")
        chain_o.append(users[0])
        n = users[0]


def _fused_weights(gm: GraphModule, lins: list[Node], proj: Node, heads: list[Any], ours: Any, v_scale: float) -> tuple[Any, ...]:
    """Weights q heads | k heads | v heads in our head order, and the output projection's columns permuted to match."""
    import torch

    ws = [_const(gm, lin.args[1]) for lin in lins]
    bs = [_const(gm, lin.args[2] if len(lin.args) > 2 else lin.kwargs.get("bias")) for lin in lins]
    rows_w, rows_b = [], []
    for i, (w, b) in enumerate(zip(ws, bs)):
        f = v_scale if i == 2 else 1.0
        for h in heads:
            sel = torch.tensor(h[i])
            rows_w.append(w[sel] * f)
            rows_b.append((b[sel] if b is not None else torch.zeros(len(sel), dtype=w.dtype)) * f)
    w_qkv, b_qkv = torch.cat(rows_w), (torch.cat(rows_b) if any(b is not None for b in bs) else None)
    wp = _const(gm, proj.args[1])
    bp = _const(gm, proj.args[2] if len(proj.args) > 2 else proj.kwargs.get("bias"))
    w_proj = torch.empty_like(wp)
    w_proj[:, ours[0]] = wp
    return w_qkv, b_qkv, w_proj, bp


def _analyse(gm: GraphModule, core: Node, norm: bool) -> _Plan:
    import torch

    where, kind, _ = _module_of(core)
    lins, maps, scale, v_scale, internal, out = _projections(core)
    x, seq = lins[0].args[0], maps[0].shape[-2]
    rows, chans = _rows_and_channels(maps, lins)
    nb, n_rows = rows.shape[0], _numel(_shape(x)) // _shape(x)[-1]
    if n_rows % seq:
        raise LeaveAlone("token count does not divide the projection's rows")
    batch = n_rows // seq
    root, entry_chain, in_order, tok = _find_entry(x, rows, batch, seq)
    head_keys = [tuple(tuple(c[i].tolist()) for c in chans) for i in range(nb)]
    heads = list(dict.fromkeys(head_keys))
    h_of = [heads.index(k) for k in head_keys]
    if len(heads) * batch != nb or len(set(zip((tok[:, 0] // seq).tolist(), h_of))) != nb:
        raise LeaveAlone("attention batch is not batch x heads")
    proj, chain_o = _output_projection(out)
    internal |= set(chain_o) | {proj}
    dv, p_in = maps[2].shape[-1], _shape(proj.args[0])[-1]
    pidx = _index_map(out, chain_o).reshape(-1, p_in)
    pn, ps, pj = pidx // (seq * dv), (pidx // dv) % seq, pidx % dv
    ours, p_tok = torch.tensor(h_of)[pn] * dv + pj, tok[pn, ps]
    if p_in != len(heads) * dv or not bool((ours == ours[:1]).all()) or not bool((p_tok == p_tok[:, :1]).all()) \
            or sorted(ours[0].tolist()) != list(range(p_in)):
        raise LeaveAlone("output projection input is not the heads concatenated")
    t_node, exit_chain, out_order = _find_exit(proj, p_tok[:, 0], batch, seq)
    internal |= set(exit_chain)
    plan = _Plan(where, kind, root, in_order, t_node, out_order, batch, seq, len(heads), len(heads[0][0]), dv,
                 scale, _fused_weights(gm, lins, proj, heads, ours, v_scale), internal=internal | {t_node})
    for node in plan.internal - {t_node}:
        if any(u not in plan.internal for u in node.users):
            raise LeaveAlone("an intermediate result is used outside the block")
    if norm and _op(root) == "layer_norm":
        _absorb_norm(gm, plan, entry_chain, lins)
    return plan


def _absorb_norm(gm: GraphModule, plan: _Plan, entry_chain: list[Node], lins: list[Node]) -> None:
    """Move a LayerNorm over channels that feeds only this block inside it."""
    ln = plan.root
    shape = ln.args[1] if len(ln.args) > 1 else ln.kwargs.get("normalized_shape")
    if list(shape) != [_shape(ln)[-1]]:
        return
    inside = set(entry_chain) | set(lins) | plan.internal
    if any(u not in inside for n in [ln, *entry_chain] for u in n.users):
        return
    arg = dict(zip(("input", "normalized_shape", "weight", "bias", "eps"), ln.args)) | dict(ln.kwargs)
    plan.norm = (_const(gm, arg.get("weight")), _const(gm, arg.get("bias")), float(arg.get("eps", 1e-5)))
    plan.internal |= {ln, *entry_chain}
    plan.root = arg["input"]


def _apply(gm: GraphModule, plans: list[_Plan], form: str) -> None:
    from edgest.passes.ane_attention import ConvAttentionTokens, LayerNormChannels

    removed_attrs = set()
    for i, p in enumerate(plans):
        w_qkv, b_qkv, w_proj, b_proj = p.weights
        norm = None
        if p.norm is not None:
            nw, nb, eps = p.norm
            norm = LayerNormChannels(w_qkv.shape[1], eps, affine=nw is not None)
            if nw is not None:
                norm.weight.data.copy_(nw)
                norm.bias.data.copy_(nb) if nb is not None else norm.bias.data.zero_()
        block = ConvAttentionTokens(
            w_qkv.shape[1], p.heads, p.dqk, p.dv, w_proj.shape[0], qkv_bias=b_qkv is not None,
            proj_bias=b_proj is not None, form=form, norm=norm, batch=p.batch, tokens=p.tokens,
            in_order=p.in_order, out_order=p.out_order, out_shape=_shape(p.exit),
        ).to(w_qkv.dtype)
        block.load_linear(w_qkv, b_qkv, w_proj, b_proj, p.scale)
        name = f"attention_to_conv_{i}"
        while hasattr(gm, name):
            name += "_"
        gm.add_submodule(name, block)
        with gm.graph.inserting_before(p.exit):
            new = gm.graph.call_module(name, (p.root,))
        new.meta["val"] = p.exit.meta.get("val")
        p.exit.replace_all_uses_with(new)
        for node in reversed(list(gm.graph.nodes)):
            if node in p.internal and not node.users:
                consts = [a for a in node.all_input_nodes if a.op == "get_attr"]
                gm.graph.erase_node(node)
                for a in consts:
                    if not a.users:
                        removed_attrs.add(a.target)
                        gm.graph.erase_node(a)
    still = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    for target in removed_attrs - still:
        owner, _, leaf = target.rpartition(".")
        try:
            delattr(gm.get_submodule(owner) if owner else gm, leaf)
        except AttributeError:
            pass
    gm.graph.lint()
    gm.recompile()


def rewrite_program(program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], *, form: str = "matmul",
                    norm: bool = True, verify: bool = True) -> tuple[torch.export.ExportedProgram, list[dict], list[dict]]:
    """The graph-level rewrite: (program, rewritten, left alone); the program is the input one if nothing changed."""
    import torch

    from edgest.capture import capture

    gm = program.module()
    for node in reversed(list(gm.graph.nodes)):  # export keeps unused results (e.g. MHA's discarded weights)
        if node.op == "call_function" and not node.users and not node.is_impure():
            gm.graph.erase_node(node)
    plans, rewritten, left, taken = [], [], [], set()
    for core in list(gm.graph.nodes):
        if not (_op(core) == "scaled_dot_product_attention" or _op(core) in _SOFTMAX):
            continue
        where, kind, ours = _module_of(core)
        if ours:
            continue  # already channels-first (module swap or an earlier run)
        try:
            plan = _analyse(gm, core, norm)
            if plan.internal & taken or plan.root in taken:
                raise LeaveAlone("overlaps another rewritten block")
        except Exception as exc:  # noqa: BLE001 - a block the analysis does not understand is left alone
            reason = str(exc) if isinstance(exc, LeaveAlone) else f"not understood ({type(exc).__name__})"
            left.append({"where": where, "kind": kind, "reason": reason})
            continue
        taken |= plan.internal
        plans.append(plan)
        rewritten.append({"where": where, "kind": kind, "via": "graph", "heads": plan.heads, "tokens": plan.tokens,
                          "batch": plan.batch, "norm_inside": plan.norm is not None})
    if not plans:
        return program, rewritten, left
    _apply(gm, plans, form)
    new = capture(gm, tuple(example_inputs))
    if verify:
        with torch.no_grad():
            ref, got = program.module()(*example_inputs), new.module()(*example_inputs)
        ref, got = (r[0] if isinstance(r, (tuple, list)) else r for r in (ref, got))
        err, top = float((got - ref).abs().max()), float(ref.abs().max())
        if not err <= 1e-4 * max(top, 1e-6):
            raise Unsupported(f"attention-to-conv rewrite is not equivalent on the example input "
                              f"(max abs error {err:.3g} at output scale {top:.3g}); please report it")
    return new, rewritten, left


def summarize(rewritten: list[dict], left: list[dict]) -> str:
    """One line: what was rewritten, how, and what was left alone and why."""
    if not rewritten and not left:
        return "no attention blocks found"
    n = len(rewritten)
    text = f"rewrote {n} attention block{'' if n == 1 else 's'}"
    vias = list(dict.fromkeys(r["via"] for r in rewritten))
    if vias:
        text += " (" + "; ".join(
            f"{via}: " + ", ".join(f"{c} {k}" for k, c in Counter(r["kind"] for r in rewritten if r["via"] == via).items())
            for via in vias) + ")"
    if left:
        text += "; left alone: " + ", ".join(
            f"{c} {k} ({reason})" for (k, reason), c in Counter((r["kind"], r["reason"]) for r in left).items())
    return text


def rewrite_modules(model: torch.nn.Module, example_inputs: tuple[Any, ...] | None = None, *, form: str = "matmul",
                    inplace: bool = False) -> tuple[torch.nn.Module, list[dict], list[dict]]:
    """Module-level swap before capture; see :func:`edgest.passes.ane_attention.rewrite_modules`."""
    from edgest.passes import ane_attention

    return ane_attention.rewrite_modules(model, example_inputs, form=form, inplace=inplace)


class AttentionToConvPass(Pass):
    """Exact attention → channels-first 1x1-conv rewrite with explicit heads (ANE style)."""

    name = "attention-to-conv"
    description = "exact attention rewrite: 1x1 convs on (B, C, 1, S), explicit heads (Apple ANE style)"
    option_table = {"form": (("matmul", "einsum"), "matmul"), "norm": (bool, True), "verify": (bool, True)}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._swap: tuple[list[dict], list[dict]] | None = None

    def rewrite_module(self, model: torch.nn.Module, example_inputs: tuple[Any, ...] | None = None) -> torch.nn.Module | None:
        """Before capture: a copy of ``model`` with known attention modules swapped, or None if none were."""
        new, rewritten, left = rewrite_modules(model, example_inputs, form=self.option("form"))
        self._swap = (rewritten, left)
        return new if rewritten else None

    def run(self, program: torch.export.ExportedProgram, ctx: PassContext) -> PassResult:
        swapped, swap_left = self._swap or ([], [])
        self._swap = None
        new, rewritten, left = rewrite_program(
            program, ctx.example_inputs, form=self.option("form"),
            norm=self.option("norm"), verify=self.option("verify"))
        seen = {r["where"] for r in rewritten + left}
        left = left + [r for r in swap_left if r["where"] not in seen]
        rewritten = swapped + rewritten
        details = {"rewritten": rewritten, "left_alone": left}
        self.details = details
        return PassResult(new, bool(rewritten), summarize(rewritten, left), details=details)
