"""Toolchain import chatter stays out of a user's terminal (edgest.quiet)."""

from __future__ import annotations

import importlib.util
import logging

import pytest

from edgest.quiet import quiet_loggers
from edgest.testing.chatter import stdout_without_chatter


def test_quiet_loggers_raise_the_level_inside_and_put_it_back_after():
    lg = logging.getLogger("edgest-test-chatter")
    lg.setLevel(logging.DEBUG)
    with quiet_loggers("edgest-test-chatter"):
        assert lg.level == logging.ERROR
    assert lg.level == logging.DEBUG


@pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao not installed (make setup)")
def test_a_prequant_rewrite_that_imports_torchao_first_prints_nothing():
    """It did: the OpenVINO int8 quantizer runs it before NNCF's quiet import, and every compile printed torchao's
    "Failed to load .../_C_mxfp8...so" (one per CUDA kernel library) and a _pytree deprecation."""
    code = ("import sys, torch\n"
            "from edgest.quantization import batch_norm_as_depthwise_conv\n"
            "net = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.BatchNorm1d(4)).eval()\n"
            "gm = torch.export.export(net, (torch.randn(2, 4, 5),), strict=False).module()\n"
            "assert 'torchao' not in sys.modules, 'the test no longer covers the first torchao import'\n"
            "print(batch_norm_as_depthwise_conv(gm))\n"
            "assert 'torchao' in sys.modules\n")
    assert stdout_without_chatter(code).strip() == "1"
