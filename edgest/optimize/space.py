"""What ``edgest optimize`` searches: targets × precisions on this host, grouped into bench matrices.

A bench matrix is targets × precisions and every target must support every precision, so the
search runs one bench per group of targets that share the precisions they are searched at (all
groups write into one bench folder, so the shared eager reference compiles once).

Defaults: the installed targets that can work and run on this host (those that cannot are listed
as skipped, with why), at fp32 and int8, plus bf16 and fp16 where the host's ISA has them
(:func:`edgest.host.capabilities`) and the target lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgest.errors import BadInput
from edgest.plugins import Registry

#: searched on every host unless --precisions says otherwise
BASE_PRECISIONS = ("fp32", "int8")
#: searched by default only where the host's ISA has the capability of the same name
ISA_PRECISIONS = ("bf16", "fp16")


@dataclass(frozen=True)
class Group:
    """One bench matrix of the search: these targets, each at these precisions."""

    precisions: tuple[str, ...]
    targets: tuple[str, ...]


@dataclass(frozen=True)
class SearchSpace:
    """The groups to bench, and one line per target or (target, precision) left out, saying why."""

    groups: tuple[Group, ...]
    skipped: tuple[str, ...] = ()

    @property
    def targets(self) -> list[str]:
        return [t for g in self.groups for t in g.targets]

    @property
    def precisions(self) -> list[str]:
        return list(dict.fromkeys(p for g in self.groups for p in g.precisions))

    @property
    def size(self) -> int:
        """Cells searched (the eager reference not counted)."""
        return sum(len(g.targets) * len(g.precisions) for g in self.groups)


def default_precisions(capabilities: dict[str, bool] | None = None) -> list[str]:
    """fp32 and int8, plus bf16/fp16 where ``capabilities`` (default: this host's) has them."""
    from edgest.host import capabilities as host_capabilities

    caps = host_capabilities() if capabilities is None else capabilities
    return [*BASE_PRECISIONS, *(p for p in ISA_PRECISIONS if caps.get(p))]


def why_unavailable(registry: Registry, name: str) -> str | None:
    """Why target ``name`` cannot compile or run here (its own words), or None."""
    cls = registry.target(name)
    return cls.unavailable_reason() or cls.host_unavailable_reason()


def build_space(registry: Registry, targets: Sequence[str] | None, precisions: Sequence[str] | None,
                capabilities: dict[str, bool] | None = None) -> SearchSpace:
    """The search for ``targets`` (default: every available one) at ``precisions`` (default: :func:`default_precisions`).

    An unknown target or precision is an error; a named target that is unavailable here, or a target
    without any asked precision, is skipped with its reason; BadInput when nothing is left to search.
    """
    from edgest.validate import PRECISIONS, check_precisions

    asked = list(precisions) if precisions is not None else default_precisions(capabilities)
    check_precisions([], asked)  # unknown names: UnknownName listing the known ones
    names = list(targets) if targets is not None else sorted(registry.targets)
    skipped: list[str] = []
    by_precisions: dict[tuple[str, ...], list[str]] = {}
    for name in names:
        cls = registry.target(name)  # UnknownName lists the registered targets
        why = why_unavailable(registry, name)
        if why:
            skipped.append(f"{name}: unavailable: {why}")
            continue
        mine = tuple(p for p in asked if p in cls.precisions)
        lacking = [p for p in asked if p not in cls.precisions]
        if lacking and precisions is not None:
            skipped.append(f"{name} {', '.join(lacking)}: not supported (it supports {', '.join(cls.precisions)})")
        if mine:
            by_precisions.setdefault(mine, []).append(name)
    groups = tuple(Group(p, tuple(t)) for p, t in by_precisions.items())
    if not groups:
        raise BadInput(_nothing_to_search(skipped, asked, PRECISIONS))
    return SearchSpace(groups, tuple(skipped))


def _nothing_to_search(skipped: list[str], asked: Sequence[str], known: Sequence[str]) -> str:
    """The one line for a search with no cell: every target unavailable, or none at the asked precisions."""
    why = f" ({'; '.join(skipped)})" if skipped else ""
    if skipped and all(": unavailable: " in line for line in skipped):
        return (f"nothing to search: no target is available here{why}; install one, or pass --targets "
                "with targets that `edgest list targets` shows as available")
    return (f"nothing to search: no available target supports {', '.join(asked)}{why}; pass --precisions "
            f"among {', '.join(known)} that the targets support (see `edgest list targets`)")
