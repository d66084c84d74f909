"""The core names no toolchain: every runtime-specific piece lives in the target that owns it.

Greps the source of the ``edgest`` package (not targets/ or plugins/) for toolchain names in
code: identifiers, attribute and import names, and one-word string literals (module or
distribution names such as ``"onnxruntime"``, ``importlib.import_module("tvm")`` or a pip
requirement ``"openvino=={openvino}"``). Comments, docstrings and prose strings (messages and
help text, which may use a first-party target as an example) are left out, via :mod:`tokenize`.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import edgest

CORE = Path(edgest.__file__).resolve().parent
TOOLCHAIN = re.compile(r"onnxruntime|executorch|coremltools|tvm|tensorrt|openvino|litert|ai_edge", re.IGNORECASE)


def _docstring_lines(source: str) -> set[int]:
    """Lines of string statements (module, class and function docstrings, and bare strings)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def toolchain_names(source: str) -> list[tuple[int, str]]:
    """(line, token) for each code token of ``source`` that names a toolchain."""
    docs = _docstring_lines(source)
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.STRING:
            if tok.start[0] in docs or re.search(r"\s", ast.literal_eval(tok.string) if tok.string[0] in "'\"" else tok.string):
                continue  # a docstring, or prose (f-strings count as prose when they hold a space)
        elif tok.type != tokenize.NAME:
            continue  # comments, operators, numbers
        if TOOLCHAIN.search(tok.string):
            found.append((tok.start[0], tok.string))
    return found


def test_the_scan_finds_code_and_skips_prose() -> None:
    source = '''"""Docstring naming onnxruntime."""
import tvm  # comment naming executorch
RUNTIME = "openvino=={openvino}"
MESSAGE = "install coremltools to build Core ML packages"
def f():
    """Docstring naming tensorrt."""
    return importlib.import_module('ai_edge_litert')
'''
    assert toolchain_names(source) == [(2, "tvm"), (3, '"openvino=={openvino}"'), (7, "'ai_edge_litert'")]


def test_the_core_names_no_toolchain() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 20  # the scan looks at the real package
    hits = [f"{path.relative_to(CORE.parent)}:{line}: {token}"
            for path in files for line, token in toolchain_names(path.read_text(encoding="utf-8"))]
    assert not hits, "the core names toolchains (move this into the target that owns it):\n" + "\n".join(hits)
