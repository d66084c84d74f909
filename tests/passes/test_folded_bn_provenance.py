"""A conv that a quantizer folded its BatchNorm into carries the BN's module path (edgest.quantize.folded)."""

from __future__ import annotations

import pytest
import torch

from edgest.debug import fx_nodes, module_exits
from edgest.quantization import (
    batch_norm_as_depthwise_conv,
    bn_after_convs,
    relabel_folded_convs,
)

pytest.importorskip("torchao", reason="torchao not installed (make setup)")


class ConvBN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.shared, self.bn2 = (torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                                     torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4))
        for bn in (self.bn, self.bn2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shared(torch.relu(self.bn(self.conv(x))))
        return self.bn2(y) + y  # a conv another op reads too: torchao would fold it wrongly


def test_a_folded_conv_is_its_batch_norms_exit_and_the_conv_no_module_exit() -> None:
    from torchao.quantization.pt2e.utils import _fuse_conv_bn_

    torch.manual_seed(0)
    net, x = ConvBN().eval(), torch.randn(1, 3, 8, 8)
    gm = torch.export.export(net, (x,), strict=False).module()
    assert batch_norm_as_depthwise_conv(gm, only_after_shared_convs=True) == 1  # bn2, as the OpenVINO quantizer does
    before = bn_after_convs(gm)
    assert [f.bn_stack[list(f.bn_stack)[-1]][0] for f in before.values()] == ["bn"]  # bn2's conv has two readers
    _fuse_conv_bn_(gm)  # what NNCF and prepare_pt2e do first
    assert relabel_folded_convs(gm, before) == 1
    exits = module_exits(*fx_nodes(gm.graph))
    (conv,) = before
    assert exits["bn"] == conv and "conv" not in exits  # the folded conv's value is the BN's output
    assert exits["bn2"] != exits["shared"]  # the BN rewritten as a depthwise conv keeps its path
    with torch.no_grad():  # the value the probe reads is what eager bn returns
        torch.testing.assert_close(gm(x), net(x), rtol=1e-4, atol=1e-4)
    assert relabel_folded_convs(gm, before) == 1  # idempotent: the same labels again
