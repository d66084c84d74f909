"""Fixtures shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

#: a user model file: a conv every target runs, then cumsum (which some targets cannot run natively)
CONV_CUMSUM = '''
import torch


class ConvCumsum(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.cumsum(torch.relu(self.conv(x)), 2)
'''


@pytest.fixture
def conv_cumsum_file(tmp_path: Path) -> Path:
    """``tmp_path/net.py`` holding the ``ConvCumsum`` user model (``--model net.py:ConvCumsum``)."""
    path = tmp_path / "net.py"
    path.write_text(CONV_CUMSUM)
    return path
