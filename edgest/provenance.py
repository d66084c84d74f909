"""Node provenance (``node.meta["from_node"]``) shared between passes instead of copied by each one.

torch 2.13 records in each FX node the chain of nodes it was made from: a list of
:class:`torch.fx.traceback.NodeSource`, each holding its own ``from_node``. Every pass that runs
through an interpreter with node meta preserved makes a new ``NodeSource(node)`` per node, and
that constructor ``copy.deepcopy``-s the node's whole chain. A chain grows by one step per pass,
so a lowering that runs tens of passes (ExecuTorch's edge passes, XNNPACK's preprocess passes,
each an ``ExportPass``) copies ever longer chains, quadratic in the number of passes.

A ``NodeSource`` is never changed once made (torch fills in fields only while constructing or
deserialising one), so a copy and the original are interchangeable. :func:`shared_provenance`
makes ``deepcopy`` of a ``NodeSource`` return the same object while a lowering runs: the chains
read exactly as before (what :func:`edgest.coverage.origins` and ExecuTorch's debug handles read
is unchanged; the ``.pte`` is byte-identical), without the copies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _same(self: Any, memo: dict[int, Any] | None = None) -> Any:
    return self


@contextlib.contextmanager
def shared_provenance() -> Iterator[None]:
    """While inside: ``copy.deepcopy`` of a torch ``NodeSource`` returns it, not a copy (see the module docstring).

    Does nothing where torch has no ``NodeSource`` or already defines how to copy one.
    """
    try:
        from torch.fx.traceback import NodeSource
    except ImportError:
        yield
        return
    if "__deepcopy__" in vars(NodeSource):
        yield
        return
    NodeSource.__deepcopy__ = _same  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del NodeSource.__deepcopy__
