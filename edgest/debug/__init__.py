"""``edgest debug``: per-module numeric diff of a compiled artifact against eager PyTorch.

:func:`debug_run` takes a run folder and returns a :class:`DebugResult` naming the first module
whose output falls below the precision's SQNR limit. Targets join in through the optional
:meth:`edgest.target.Target.intermediates`, receiving :class:`Probe` records; a target finds the
probes in its own graph with :func:`module_exits` when its nodes carry module paths.
"""

from edgest.debug.localize import DebugResult, ModuleDiff
from edgest.debug.probes import GraphNode, Probe, fx_nodes, inside, module_exits
from edgest.debug.run import debug_plan, debug_run, supports_intermediates

__all__ = ["DebugResult", "GraphNode", "ModuleDiff", "Probe", "debug_plan", "debug_run", "fx_nodes", "inside",
           "module_exits", "supports_intermediates"]
