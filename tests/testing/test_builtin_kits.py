"""edgest's own passes and a zoo model pass the kits it ships to third parties."""

from __future__ import annotations

from typing import Any

from edgest.testing import ModelConformance, PassConformance


def _tiny_attention() -> Any:
    """A pre-norm block around nn.MultiheadAttention: something for attention-to-conv to rewrite."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(16)
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
            self.head = nn.Linear(16, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.norm(x)
            return self.head((x + self.attn(h, h, h)[0]).mean(1))

    torch.manual_seed(0)
    return Block().eval()


class TestAttentionToConvKit(PassConformance):
    pass_name = "attention-to-conv"
    input_shape = (1, 6, 16)

    def model(self) -> Any:
        return _tiny_attention()


class TestQuantizeKit(PassConformance):
    pass_name = "quantize"
    pass_options = {"calibration_size": 2}
    target_name = "onnx"  # quantize needs a target with a quantizer (ONNX Runtime's runs after lowering)


class TestSqueezeTimeTinyKit(ModelConformance):
    model_name = "squeezetime_tiny"
