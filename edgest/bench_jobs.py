"""Bench cells as executor jobs (:mod:`edgest.executors`): what runs a cell where, and the driver's side.

* local: :meth:`_CellRun.cell` in this process, as before executors;
* pool: the same in a spawned worker, rebuilt from a picklable :class:`CellContext` (the worker loads the
  installed plugins: a bench given a registry of its own runs locally);
* ray: :func:`run_on_node` compiles into a scratch folder on the node and sends the run folder back by
  content (:mod:`edgest.executors.transfer`); the driver writes it into the bench folder. The driver sends
  the key its cached copy was made under, and a node whose key matches says so instead of compiling: the
  cache works across nodes, and the key is computed where the toolchain is.

Every cell takes the host's timing lock (:mod:`edgest.executors.timing`) wherever it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.bench import Cell, _CellRun, _Matrix
from edgest.errors import BadInput
from edgest.executors import Done, Executor, Job, timing

if TYPE_CHECKING:
    from edgest.plugins import Registry

OnCell = Callable[[Cell, str, int, int], None]
#: a share of the toolchain resource: a node advertises 1 unit, so its CPUs (not the toolchain) bound its compiles
TOOLCHAIN_SHARE = 0.001


@dataclass(frozen=True)
class CellContext:
    """Everything a cell needs besides a registry and listeners; picklable (it crosses processes and machines).

    ``weights`` are paths on this host, or :class:`~edgest.executors.transfer.Blob` for a remote node.
    """

    out_dir: Path
    weights: dict[str, Any]
    stand_ins: dict[str, Any]
    refused: dict[str, str]
    model_options: dict[str, dict[str, Any]]
    eval_dir: Path | None
    eval_key: str
    target_options: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    use_cache: bool
    store: str = ""

    @classmethod
    def of(cls, run: _CellRun) -> CellContext:
        m = run.m
        return cls(m.out_dir, dict(m.weights), dict(m.stand_ins), dict(m.refused), m.model_options, m.eval_dir,
                   m.eval_key, run.target_options, run.settings, run.use_cache)

    def cell_run(self, on_stage: Any = None, registry: Registry | None = None, **changes: Any) -> _CellRun:
        """A :class:`_CellRun` over this context (``changes``: other field values, e.g. a scratch ``out_dir``)."""
        from edgest.plugins import get_registry

        ctx = replace(self, **changes)
        m = _Matrix(registry or get_registry(), ctx.out_dir, ctx.weights, ctx.stand_ins, ctx.refused, ctx.model_options,
                    ctx.eval_dir, ctx.eval_key)
        return _CellRun(m, ctx.target_options, ctx.settings, ctx.use_cache, on_stage)


def run_in_process(ctx: CellContext, cell: Cell) -> tuple[dict[str, Any], bool]:
    """A pool worker's job: the cell into the bench folder (same host), under the timing lock."""
    with timing.cell_listener() as listener:
        return ctx.cell_run(on_stage=listener).cell(cell)


def run_on_node(ctx: CellContext, job: tuple[Cell, str]) -> dict[str, Any]:
    """A Ray task: the cell compiled into a scratch folder here, its run folder returned by content.

    ``job`` is the cell and the key of the driver's cached copy ('' when it has none); when this node's
    key is the same, nothing is compiled and the value says ``cached``.
    """
    from edgest.executors import transfer
    from edgest.outdir import temp_folder

    cell, known_key = job
    weights = {m: transfer.cached(b) for m, b in ctx.weights.items()}
    with temp_folder("edgest-cell-") as scratch, timing.cell_listener() as listener:
        run = ctx.cell_run(on_stage=listener, out_dir=scratch, weights=weights, use_cache=False,
                           stand_ins={m: weights[m] for m in ctx.stand_ins})
        key = run.key(cell)
        if known_key and key == known_key:
            return {"key": key, "cached": True}
        (scratch / "cells").mkdir()
        rec, _ = run.cell(cell)
        run_dir = run.run_dir(cell)
        store = Path(ctx.store) if ctx.store else None
        files = transfer.pack_folder(run_dir, store) if run_dir.is_dir() else {}
    return {"key": key, "cached": False, "record": rec, "files": files}


@contextmanager
def warm(executor: Executor | None, models: Sequence[str] = (), targets: Sequence[str] = ()) -> Iterator[None]:
    """The executor's workers started for the block when it can start them ahead (a pool), else nothing; they
    import the code of ``models`` and ``targets`` and the targets' toolchains once, ahead of the cells."""
    start = getattr(executor, "warm", None)
    with start(*warm_modules(models, targets)) if start is not None else nullcontext():
        yield


def warm_modules(models: Sequence[str], targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """What the cells of ``models`` × ``targets`` import: edgest's code (each model's factory module, each target's
    module: toolchains are imported lazily there) and the toolchains and runtimes the targets require. Unknown
    names are left out (the bench's own checks name them)."""
    reg = _installed()
    code: list[str] = []
    toolchains: list[str] = []
    for name in models:
        factory = getattr(reg.models.get(name), "factory", None)
        if isinstance(factory, str):
            code.append(factory.partition(":")[0])
    for name in targets:
        cls = reg.targets.get(name)
        if cls is not None:
            code.append(cls.__module__)
            toolchains += getattr(cls, "requires", ())
    return list(dict.fromkeys(code)), list(dict.fromkeys(toolchains))


def check_devices(executor: Executor | None, devices: dict[str, str], targets: Sequence[str]) -> None:
    """Refuse ``--device`` where nothing can place cells on devices, and a target that is not in the bench."""
    if not devices:
        return
    if executor is None or not executor.remote:
        raise BadInput(f"--device ({', '.join(f'{t}={d}' for t, d in devices.items())}) places cells on device hosts of a "
                       "Ray cluster; add --executor ray, or drop --device")
    for target, label in devices.items():
        if target != "*" and target not in targets:
            raise BadInput(f"--device {target}={label} names target '{target}', which is not in the bench "
                           f"({', '.join(targets)})")


def needs(cell: Cell, devices: dict[str, str]) -> dict[str, float]:
    """What a node must offer to run ``cell``: a CPU, the cell's toolchain and, when it asks for one, its device."""
    out = {"CPU": 1.0, f"edgest-target:{cell.target}": TOOLCHAIN_SHARE}
    label = devices.get(cell.target, devices.get("*"))
    if label:
        out[f"device:{label}"] = 1.0  # one unit per device: two timings never share it
    return out


def run_cells(run: _CellRun, cells: Sequence[Cell], executor: Executor | None, devices: dict[str, str],
              on_cell: OnCell | None) -> list[dict[str, Any]]:
    """Every cell's record, in the matrix's order, whichever executor ran them; ``ran_on`` says where."""
    from edgest.executors.local import LocalExecutor

    executor = executor or LocalExecutor()
    if executor.name != "local" and run.m.registry is not _installed():
        raise BadInput(f"executor '{executor.name}' runs cells with the installed plugins; a bench given its own "
                       "registry (registry=) runs with executor='local'")
    records: list[dict[str, Any] | None] = [None] * len(cells)
    todo = [i for i, c in enumerate(cells) if not run.stopped(c)]
    for i, c in enumerate(cells):  # a stopped matrix: every record at once, nothing sent anywhere
        if run.stopped(c):
            records[i] = {**run.cell(c)[0], "ran_on": {"executor": "driver"}}
    jobs, shared = _jobs(run, cells, todo, executor, devices)
    starts: dict[int, float] = {}

    def started(job: Job, where: dict[str, Any]) -> None:
        starts[job.index] = time.perf_counter()
        if on_cell:
            on_cell(cells[job.index], "running", job.index, len(cells))
        if executor.remote:
            from edgest import progress

            progress.detail(f"{job.label} on {where.get('host')} (node {str(where.get('node', ''))[:8]})")

    done_count = len(cells) - len(todo)
    for done in executor.run(jobs, shared, on_start=started):
        cell = cells[done.index]
        seconds = time.perf_counter() - starts[done.index] if done.index in starts else 0.0
        rec, cached = _finish(run, cell, done, executor, seconds)
        rec["ran_on"] = {**done.where, "attempts": done.attempts, **({"failures": list(done.failures)} if done.failures else {})}
        records[done.index] = rec
        done_count += 1
        if on_cell:
            on_cell(cell, "cached" if cached else rec["status"], done_count, len(cells))
    return [r for r in records if r is not None]


def _installed() -> Registry:
    from edgest.plugins import get_registry

    return get_registry()


def _jobs(run: _CellRun, cells: Sequence[Cell], todo: list[int], executor: Executor,
          devices: dict[str, str]) -> tuple[list[Job], Any]:
    """The jobs for ``executor`` and the argument they share."""
    if executor.name == "local":
        listener = run.on_stage

        def local(_: Any, cell: Cell) -> tuple[dict[str, Any], bool]:
            with timing.cell_listener(listener) as locked:
                return replace(run, on_stage=locked).cell(cell)

        return [Job(i, cells[i].label, local, cells[i]) for i in todo], None
    ctx = CellContext.of(run)
    if not executor.remote:
        return [Job(i, cells[i].label, run_in_process, cells[i]) for i in todo], ctx
    return [Job(i, cells[i].label, run_on_node, (cells[i], _known_key(run, cells[i])), needs(cells[i], devices))
            for i in todo], _for_nodes(ctx, executor)


def _known_key(run: _CellRun, cell: Cell) -> str:
    """The key of the driver's cached copy of ``cell`` when it is whole ('' when there is none, or no cache)."""
    if not run.use_cache:
        return ""
    try:
        key = (run.run_dir(cell) / "cell.key").read_text()
    except (OSError, UnicodeDecodeError):
        return ""
    return key if run.from_cache(cell, key)[0] is not None else ""


def _for_nodes(ctx: CellContext, executor: Executor) -> CellContext:
    """``ctx`` with its weights files packed by content, to travel to other machines."""
    from edgest.executors import transfer

    store = getattr(executor, "store", None)
    weights = {m: transfer.pack(Path(p), store) for m, p in ctx.weights.items()}
    return replace(ctx, weights=weights, stand_ins={m: weights[m] for m in ctx.stand_ins},
                   store=str(store) if store else "")


def _finish(run: _CellRun, cell: Cell, done: Done, executor: Executor, seconds: float) -> tuple[dict[str, Any], bool]:
    """The record of a finished job: its value, or a record of its error."""
    if done.error:
        return run.record(cell, "", None, done.error, False, seconds), False
    if not executor.remote:
        return done.value
    value = done.value
    if value["cached"]:
        report, error = run.from_cache(cell, value["key"])
        return run.record(cell, value["key"], report, error, report is not None, seconds), report is not None
    _write_run_folder(run.run_dir(cell), value)
    return value["record"], False


def _write_run_folder(run_dir: Path, value: dict[str, Any]) -> None:
    """A node's run folder into the bench folder: replaced whole (staged), its report pointing here."""
    from edgest.executors import transfer
    from edgest.fsio import atomic_write_text
    from edgest.outdir import MARKER, staged_output
    from edgest.report.writers import read_json, write_reports

    files = {rel: b for rel, b in value["files"].items() if rel not in (MARKER, "cell.key")}
    (run_dir / "cell.key").unlink(missing_ok=True)
    if not files:  # the cell failed before its run folder appeared, as a local compile would leave none
        return
    with staged_output(run_dir, force=True) as folder:
        transfer.unpack_folder(files, folder)
        if (folder / "report.json").is_file():
            write_reports(replace(read_json(folder / "report.json"), run_dir=str(run_dir.absolute())), folder)
    if "cell.key" in value["files"]:
        atomic_write_text(run_dir / "cell.key", value["key"])


def parse_devices(items: Sequence[str], targets: Sequence[str]) -> dict[str, str]:
    """``--device`` values: ``LABEL`` (every cell) or ``TARGET=LABEL`` → ``{target or "*": label}``."""
    out: dict[str, str] = {}
    for item in items:
        target, eq, label = (s.strip() for s in item.partition("="))
        target, label = (target, label) if eq else ("*", target)
        if not label or not target or any(c in label for c in ", :"):
            raise BadInput(f"malformed --device '{item}'; write LABEL or TARGET=LABEL, e.g. --device onnx=pixel-8")
        if target != "*" and target not in targets:
            raise BadInput(f"--device '{item}' names target '{target}', which is not in the bench ({', '.join(targets)})")
        if target in out:
            raise BadInput(f"--device gives {'every target' if target == '*' else target} two devices; give each once")
        out[target] = label
    return out
