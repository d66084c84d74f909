"""The conformance kits catch plugin mistakes: each mutated copy of an example plugin fails its kit.

Copies of ``examples/target``, ``examples/pass`` and ``examples/model`` are written under new
package names, one per mistake (plus one unmutated copy of each), and the kits run on all of
them in one pytest session in a subprocess. The unmutated copies must pass every kit test; each
mutant must fail the kit test that names its mistake.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: example → (package, kit class, what the kit subclass sets)
KITS = {
    "target": ("edgest_example_target", "TargetConformance", 'target_name = "example-pt2"'),
    "pass": ("edgest_example_pass", "PassConformance", 'pass_name = "fuse-bn"'),
    "model": ("edgest_example_model", "ModelConformance", 'model_name = "example_video_tiny"'),
}

#: mutant → (example, [(file, text, replacement)], the kit test that must fail ("*": every test))
MUTANTS: dict[str, tuple[str, list[tuple[str, str, str]], str]] = {
    "no_threads": ("target", [("device.py", "        self.threads = torch.get_num_threads()", "        pass")],
                   "test_runner_contract"),
    "value_error": ("target", [("target.py", "raise edgest.BadInput(", "raise ValueError(")],
                    "test_runner_bad_input_raises_edgest_errors"),
    "int8_no_quantizer": ("target", [("target.py", 'precisions = ("fp32",)', 'precisions = ("fp32", "int8")')],
                          "test_declared_precisions_work"),
    "no_install_hint": ("target", [("target.py", '    install_hint = "pip install -e examples/target"\n', "")],
                        "test_says_how_to_install"),
    "heavy_import": ("target", [("target.py", "import edgest\n", "import edgest\nimport torch  # noqa: F401\n")],
                     "test_importing_the_plugin_loads_no_toolchain"),
    "ignores_threads": ("target", [("target.py", "return load(str(path), threads)", "return load(str(path), 1)")],
                        "test_lower_run_and_accuracy"),
    "requires_typo": ("target", [("target.py", 'requires = ("torch",)', 'requires = ("torhc",)')],
                      "test_available_here"),
    "runtime_not_required": ("target", [("target.py", 'requires = ("torch",)', 'requires = ("torch",)\n    runtime_modules = ("numpy",)')],
                             "test_runtime_modules_are_among_requires"),
    "device_needs_edgest": ("target", [("device.py", "import numpy as np\n", "import numpy as np\n\nimport edgest  # noqa: F401\n")],
                            "test_device_runner_needs_only_the_runtime"),
    "bad_target_name": ("target", [("target.py", 'name = "example-pt2"', 'name = "Example PT2"')], "*"),
    "returns_program": ("pass", [("fuse_bn.py", 'return edgest.PassResult(new, True, f"folded {len(pairs)} batch norm(s) '
                                               'into convolutions", details)', "return new")],
                        "test_run_returns_a_pass_result_and_leaves_its_input_alone"),
    "mutates_input": ("pass", [("fuse_bn.py", "eps, gamma, beta)\n",
                                "eps, gamma, beta)\n    weight.copy_(new_w)  # in place: the caller's program too\n")],
                      "test_run_returns_a_pass_result_and_leaves_its_input_alone"),
    "bypasses_table": ("pass", [("fuse_bn.py", "    def run(self, program",
                                 "    def __init__(self, **options):\n        self.options = options\n\n    def run(self, program")],
                       "test_option_table_is_valid_and_enforced"),
    "wrong_num_classes": ("model", [("plugin.py", 'config={"num_classes": classes,', 'config={"num_classes": classes + 1,')],
                          "test_runs_at_its_input_shape_and_outputs_num_classes"),
    "bad_layout": ("model", [("plugin.py", '"B,C,T,H,W"', '"B,C,H,W"')], "*"),
    "torch_at_top": ("model", [("plugin.py", "import edgest\n", "import edgest\nimport torch  # noqa: F401\n")],
                     "test_importing_the_plugin_does_not_import_torch"),
}


def _copy(example: str, variant: str, edits: list[tuple[str, str, str]], pkgs: Path) -> None:
    package = KITS[example][0]
    dest = pkgs / f"{package}_{variant}"
    dest.mkdir(parents=True)
    for src in (EXAMPLES / example / package).glob("*.py"):
        text = src.read_text().replace(package, dest.name)
        for file, old, new in edits:
            if file == src.name:
                assert text.count(old) == 1, f"mutation of {file} no longer applies: {old!r}"
                text = text.replace(old, new)
        (dest / src.name).write_text(text)


def _kit_class(example: str, variant: str) -> str:
    package, kit, sets = KITS[example]
    return f"class Test_{variant}({kit}):\n    {sets}\n    plugin = \"{package}_{variant}.plugin\"\n"


@pytest.fixture(scope="module")
def kit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with every copy under ``pkgs/`` and ``test_kits.py``: one kit class per copy."""
    root = tmp_path_factory.mktemp("kits")
    classes = []
    for example in KITS:
        _copy(example, f"clean_{example}", [], root / "pkgs")
        classes.append(_kit_class(example, f"clean_{example}"))
    for mutant, (example, edits, _) in MUTANTS.items():
        _copy(example, mutant, edits, root / "pkgs")
        classes.append(_kit_class(example, mutant))
    (root / "test_kits.py").write_text("from edgest.testing import ModelConformance, PassConformance, TargetConformance\n\n\n"
                                       + "\n\n".join(classes))
    (root / "pytest.ini").write_text("[pytest]\npythonpath = pkgs\n")
    return root


def _run_kits(root: Path, name: str, *args: str) -> dict[str, dict[str, str]]:
    """Kit class → test name → passed | failed | skipped, from one pytest run of ``test_kits.py``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={name}.xml",
                           *args, "test_kits.py"], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert (root / f"{name}.xml").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    found: dict[str, dict[str, str]] = {}
    for case in ET.parse(root / f"{name}.xml").iter("testcase"):
        state = ("failed" if case.find("failure") is not None or case.find("error") is not None
                 else "skipped" if case.find("skipped") is not None else "passed")
        found.setdefault(case.get("classname", "").rsplit(".", 1)[-1], {})[case.get("name", "")] = state
    return found


#: target kit tests that start a process with torch and the runtime (a compile, the runner probe)
COSTLY = ("test_lower_run_and_accuracy", "test_runner_contract", "test_runner_bad_input_raises_edgest_errors")


@pytest.fixture(scope="module")
def quick(kit_root: Path) -> dict[str, dict[str, str]]:
    """Every kit test, except that the costly ones run only on the mutant they must catch.

    (The unmutated examples pass the whole kit in their own tests, ``examples/*/tests``, and
    ``test_each_mistake_fails_the_whole_kit`` runs everything on every copy.)
    """
    variants = ["clean_target"] + [m for m, (example, _, _) in MUTANTS.items() if example == "target"]
    skip = [f"test_kits.py::Test_{v}::{t}" for v in variants for t in COSTLY if MUTANTS.get(v, ("", [], ""))[2] != t]
    return _run_kits(kit_root, "quick", *(arg for node in skip for arg in ("--deselect", node)))


@pytest.fixture(scope="module")
def whole(kit_root: Path) -> dict[str, dict[str, str]]:
    """Every kit test on every copy."""
    return _run_kits(kit_root, "whole")


def _check_mutant(results: dict[str, str], expected: str) -> None:
    failed = {name for name, state in results.items() if state == "failed"}
    if expected == "*":  # edgest refuses the plugin itself: every kit test fails with its reason
        assert failed == set(results), results
    else:  # exactly the test for that mistake: the kit says what is wrong
        assert failed == {expected}, results


@pytest.mark.parametrize("example", sorted(KITS))
def test_unmutated_examples_pass_their_kit(quick, example):
    results = quick[f"Test_clean_{example}"]
    assert len(results) >= 5 and set(results.values()) == {"passed"}, results


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_each_mistake_fails_the_kit(quick, mutant):
    _check_mutant(quick[f"Test_{mutant}"], MUTANTS[mutant][2])


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted([f"clean_{e}" for e in KITS] + list(MUTANTS)))
def test_each_mistake_fails_the_whole_kit(whole, variant):
    results = whole[f"Test_{variant}"]
    if variant.startswith("clean_"):
        assert set(results.values()) == {"passed"}, results
    else:
        _check_mutant(results, MUTANTS[variant][2])
