"""Op coverage for ``edgest check``: TVM's ExportedProgram importer's convert map, without importing.

``from_exported_program`` decomposes the program to core ATen (``run_decompositions()``) and
then converts each node by its target's name through the importer's convert map, refusing the
whole program when a name is missing. This module runs the same decomposition and asks the same
map: a name in it is ``native`` (Relax, compiled by TVM for the CPU), one missing ``unsupported``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from edgest.coverage import Coverage, is_work, judged_per_op

if TYPE_CHECKING:
    import torch


def coverage(program: torch.export.ExportedProgram) -> Coverage:
    """Decompose ``program`` as the importer does and judge each node by its convert map."""
    from tvm.relax.frontend.torch.exported_program_translator import (
        ExportedProgramImporter,
    )

    convert = ExportedProgramImporter().convert_map

    def decompose(prog: torch.export.ExportedProgram) -> torch.fx.Graph:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return prog.run_decompositions().graph

    def judge(node: torch.fx.Node) -> tuple[str, str] | None:
        if not is_work(node):
            return None
        name = getattr(node.target, "__name__", str(node.target))
        if name in convert:
            return "native", ""
        return "unsupported", f"no converter for {name} in TVM's ExportedProgram importer"

    return judged_per_op("tvm", program, decompose, judge,
                  f"TVM Relax ExportedProgram importer's convert map (apache-tvm {_version()}) after core ATen decomposition")


def _version() -> str:
    import importlib.metadata

    for dist in ("apache-tvm", "tvm"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"
