"""Pass option tables: command-line text typed by the pass's table, unknown options and bad values refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgest.errors import BadInput
from edgest.options import Text, check_option, table_problem
from edgest.passes.attention_to_conv import AttentionToConvPass
from edgest.passes.base import Pass
from edgest.passes.options import parse_pass_arg
from edgest.passes.quantize import QuantizePass


class _NoOptions(Pass):
    name = "no-options"

    def run(self, program, ctx):
        raise NotImplementedError


def test_command_line_text_is_typed_by_the_pass_table():
    name, options = parse_pass_arg("attention-to-conv:form=einsum,norm=false,verify=1")
    assert name == "attention-to-conv" and all(isinstance(v, Text) for v in options.values())
    assert AttentionToConvPass(**options).options == {"form": "einsum", "norm": False, "verify": True}
    _, options = parse_pass_arg("quantize:calibration_size=16,skip=fc+layer4.1,sensitivity=true")
    q = QuantizePass(**options)
    assert q.options["calibration_size"] == 16 and q.options["skip"] == ["fc", "layer4.1"] and q.options["sensitivity"] is True


@pytest.mark.parametrize("arg,message", [
    ("attention-to-conv:foo=1", "unknown pass 'attention-to-conv' option 'foo'; available: form, norm, verify"),
    ("attention-to-conv:norm=maybe", "pass 'attention-to-conv' option norm must be true or false, not 'maybe'; write norm=true or "
                                      "norm=false"),
    ("attention-to-conv:form=conv", "pass 'attention-to-conv' option form='conv' is not one of matmul, einsum; give one of those"),
    ("quantize:calibration_size=lots", "pass 'quantize' option calibration_size must be int, not 'lots'; write a number "
                                        "(e.g. calibration_size=1)"),
    ("quantize:calibration_size=0", "pass 'quantize' option calibration_size must be a positive integer, not 0"),
])
def test_bad_pass_options_are_refused_in_one_line(arg, message):
    name, options = parse_pass_arg(arg)
    cls = {"attention-to-conv": AttentionToConvPass, "quantize": QuantizePass}[name]
    with pytest.raises(BadInput) as info:
        cls(**options)
    assert str(info.value) == message


def test_python_values_are_checked_too_and_a_pass_without_a_table_takes_no_options():
    with pytest.raises(BadInput, match="pass 'attention-to-conv' option norm must be bool, not 'yes'"):
        AttentionToConvPass(norm="yes")
    with pytest.raises(BadInput, match=r"^unknown pass 'no-options' option 'factor'; available: \(none\)$"):
        _NoOptions(factor=2)
    assert _NoOptions().options == {}


def test_the_table_helper_types_and_refuses():
    table = {"trials": (int, 0), "scale": (float, 1.0), "db": (str, None), "mode": (("a", "b"), "a")}
    assert check_option("t", table, "scale", 2) == 2.0 and isinstance(check_option("t", table, "scale", 2), float)
    assert check_option("t", table, "trials", Text("8")) == 8 and check_option("t", table, "db", None) is None
    with pytest.raises(BadInput, match="t option trials must be int, not True"):
        check_option("t", table, "trials", True)
    assert table_problem(table) is None
    assert table_problem({"x": int}) == "option_table['x'] must be a pair (allowed values or a type, default), not <class 'int'>"
    assert table_problem({"x": (dict, {})}).startswith("option_table['x'] allows <class 'dict'>")
    assert table_problem({"x": (int, "3")}) == "option_table['x'] default '3' is not allowed by its own entry"


def test_cli_refuses_an_unknown_pass_option_before_any_work(tmp_path: Path):
    env = {**os.environ, "EDGEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    model = tmp_path / "net.py"
    model.write_text("import torch\nclass Net(torch.nn.Sequential):\n    def __init__(self):\n"
                     "        super().__init__(torch.nn.Linear(8, 4))\n")
    proc = subprocess.run([sys.executable, "-m", "edgest", "compile", "--model", f"{model}:Net", "--input-shape", "2x8",
                           "--target", "eager", "--pass", "attention-to-conv:foo=1", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("edgest: error: unknown pass 'attention-to-conv' option 'foo'; "
                                   "available: form, norm, verify")
    assert not (tmp_path / "run").exists()


def test_a_pass_option_given_twice_is_refused():
    from edgest.passes.options import parse_pass_arg

    with pytest.raises(BadInput, match="pass option 'form' is given twice"):
        parse_pass_arg("attention-to-conv:form=matmul,form=einsum")
