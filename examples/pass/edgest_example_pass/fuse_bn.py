"""``fuse-bn``: fold each eval-mode BatchNorm into the convolution that feeds it.

What a pass sees: the ``torch.export.ExportedProgram`` that edgest captured (ATen ops as the
model called them: ``aten.conv2d.default``, ``aten.batch_norm.default``; not decomposed to core
ATen), after the passes before it. This pass works on ``program.module()``, an
``fx.GraphModule`` whose weights are ``get_attr`` nodes, writes the folded weights as *new*
tensors (the program it was given shares its weights with that module and must not change),
and exports the result again on the example inputs, as every pass returns a new program.

Options (``--pass fuse-bn:verify=false,tolerance=1e-3``): ``verify`` (bool, default true)
compares the fused program with the input program on the example inputs and refuses a result
further than ``tolerance`` (float, default 1e-4, relative to the largest output) from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import edgest

if TYPE_CHECKING:
    import torch

def _tensor(gm: Any, node: Any) -> torch.Tensor | None:
    """The tensor a ``get_attr`` node names, or None for a missing (None) argument."""
    if node is None:
        return None
    obj = gm
    for part in node.target.split("."):
        obj = getattr(obj, part)
    return obj.detach()


def _fold(gm: Any, conv: Any, bn: Any, index: int) -> None:
    """Point ``conv`` at new folded weight and bias attributes and drop ``bn`` from the graph."""
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    weight, bias = _tensor(gm, conv.args[1]), _tensor(gm, conv.args[2] if len(conv.args) > 2 else None)
    gamma, beta, mean, var = (_tensor(gm, a) for a in bn.args[1:5])
    eps = bn.args[7]
    gamma = torch.ones_like(mean) if gamma is None else gamma
    beta = torch.zeros_like(mean) if beta is None else beta
    new_w, new_b = fuse_conv_bn_weights(weight, bias, mean, var, eps, gamma, beta)
    names = (f"fused_bn_{index}_weight", f"fused_bn_{index}_bias")
    for name, value in zip(names, (new_w, new_b)):
        gm.register_parameter(name, torch.nn.Parameter(value.detach().clone(), requires_grad=False))
    with gm.graph.inserting_before(conv):
        w_node, b_node = (gm.graph.get_attr(n) for n in names)
    rest = tuple(conv.args[3:])
    conv.args = (conv.args[0], w_node, b_node, *rest)
    bn.replace_all_uses_with(conv)
    gm.graph.erase_node(bn)


def _pairs(gm: Any) -> list[tuple[Any, Any]]:
    """(conv, batch_norm) pairs where an eval-mode batch norm is the only user of a convolution."""
    import torch

    aten = torch.ops.aten
    convs = {aten.conv1d.default, aten.conv2d.default, aten.conv3d.default}
    found = []
    for bn in gm.graph.nodes:
        if bn.op != "call_function" or bn.target is not aten.batch_norm.default or bn.args[5]:
            continue  # not a batch norm, or one in training mode
        conv = bn.args[0]
        if getattr(conv, "target", None) not in convs or len(conv.users) != 1:
            continue
        if all(a is None or a.op == "get_attr" for a in (*bn.args[1:5], *conv.args[1:3])):  # weights, not activations
            found.append((conv, bn))
    return found


class FuseBatchNormPass(edgest.Pass):
    """Fold eval-mode BatchNorm into the preceding conv (1-D, 2-D, 3-D): one op fewer, same outputs."""

    name = "fuse-bn"
    description = "example plugin: fold eval-mode BatchNorm into the preceding convolution (verify, tolerance)"
    option_table = {"verify": (bool, True), "tolerance": (float, 1e-4)}

    def run(self, program: torch.export.ExportedProgram, ctx: edgest.PassContext) -> edgest.PassResult:
        import torch

        gm = program.module()
        pairs = _pairs(gm)
        for i, (conv, bn) in enumerate(pairs):
            _fold(gm, conv, bn, i)
        if not pairs:
            return edgest.PassResult(program, False, "no conv → batch_norm pair to fold")
        gm.graph.eliminate_dead_code()
        gm.recompile()
        new = torch.export.export(gm, ctx.example_inputs, strict=False)
        details: dict[str, Any] = {"folded": len(pairs)}
        if self.option("verify"):
            details["max_rel_error"] = self._verify(program, new, ctx.example_inputs)
        return edgest.PassResult(new, True, f"folded {len(pairs)} batch norm(s) into convolutions", details)

    def _verify(self, before: torch.export.ExportedProgram, after: torch.export.ExportedProgram, inputs: tuple[Any, ...]) -> float:
        import torch

        with torch.no_grad():
            a, b = before.module()(*inputs), after.module()(*inputs)
        pairs = zip(a if isinstance(a, (tuple, list)) else (a,), b if isinstance(b, (tuple, list)) else (b,))
        worst = max(float((x - y).abs().max() / x.abs().max().clamp_min(1e-12)) for x, y in pairs)
        if worst > self.option("tolerance"):
            raise edgest.Unsupported(f"fuse-bn changed the outputs by {worst:.2e} (relative), over tolerance "
                                     f"{self.option('tolerance'):g}; run without it or raise tolerance")
        return worst
