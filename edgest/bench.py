"""``edgest bench``: a model × target × precision matrix through the same pipeline as compile.

Cells run one after another, a failing cell is recorded and the run goes on. A cell whose
inputs are unchanged (model spec and model options, weights hash, passes and options, target and its options,
precision, toolchain versions, edgest version, and the code of edgest and of the target, model and pass packages)
is reused from the cache instead of recompiled.
Budgets turn the matrix into a CI gate. Speed-ups are measured against eager PyTorch: a model
whose matrix has no eager fp32 cell gets one added (the reference: timed once, cached like any
cell, never judged against the budget).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.checks.latency import LatencyConfig
from edgest.code_fingerprint import code_fingerprint
from edgest.errors import BadInput, EdgestError
from edgest.fsio import atomic_write_text, sha256_of
from edgest.host import describe as describe_host
from edgest.model_options import typed_for
from edgest.outdir import read_marker
from edgest.plugins import Registry, get_registry
from edgest.records import Report
from edgest.report.writers import read_run

if TYPE_CHECKING:
    from edgest.executors import Executor

#: 1.1 adds each cell's ``reference`` and ``in_matrix``, and ``settings.weights``; 1.2 adds ``settings.streaming``
#: and each ``--streaming`` cell's ``streaming`` (1.x documents read with neither: nothing streamed); a ``--coverage``
#: bench adds ``settings.coverage`` and each cell's ``coverage`` (optional keys, read as absent: not asked)
BENCH_SCHEMA_VERSION = "1.2"


@dataclass(frozen=True)
class Budget:
    """Limits a cell must meet; ``max_latency_ms`` maps a target name (or ``*``) to a limit."""

    min_sqnr_db: float | None = None
    max_accuracy_drop: float | None = None  # percentage points of top-1 agreement lost vs eager
    max_latency_ms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse budgets no cell can be judged against (NaN compares false with everything: a silent pass)."""
        for name, value, fix in (("--min-sqnr", self.min_sqnr_db, "a finite number of dB"),
                                 ("--max-accuracy-drop", self.max_accuracy_drop, "a number of points from 0 to 100")):
            if value is not None and not (math.isfinite(value) and (name == "--min-sqnr" or 0 <= value <= 100)):
                py = "min_sqnr_db" if name == "--min-sqnr" else "max_accuracy_drop"
                raise BadInput(f"budget {name} ({py}=) {value!r} is not usable; give {fix}")
        for target, limit in self.max_latency_ms.items():
            _check_latency_limit(f"{target}={limit!r}" if target != "*" else repr(limit), limit)

    def violations(self, cell: dict[str, Any]) -> list[str]:
        """Readable reasons ``cell`` is over budget (empty when it is within)."""
        out = []
        acc, lat = cell.get("accuracy") or {}, cell.get("latency") or {}
        if self.min_sqnr_db is not None and acc.get("sqnr_db") is not None and acc["sqnr_db"] < self.min_sqnr_db:
            out.append(f"SQNR {acc['sqnr_db']:.1f} dB < {self.min_sqnr_db:g} dB")
        if self.max_accuracy_drop is not None and acc.get("top1_agreement") is not None:
            drop = 100.0 * (1.0 - acc["top1_agreement"])
            if drop > self.max_accuracy_drop:
                out.append(f"top-1 drop {drop:.1f} pt > {self.max_accuracy_drop:g} pt")
        limit = self.max_latency_ms.get(cell["target"], self.max_latency_ms.get("*"))
        if limit is not None and lat.get("p50_ms") is not None and lat["p50_ms"] > limit:
            out.append(f"p50 {lat['p50_ms']:.2f} ms > {limit:g} ms")
        return out


def _check_latency_limit(item: str, limit: float) -> None:
    if not (math.isfinite(limit) and limit > 0):
        raise BadInput(f"latency budget '{item}' must be a positive, finite number of milliseconds; write 20 or onnx=20,executorch=30")


def parse_latency_budget(text: str | None, targets: Sequence[str] | None = None) -> dict[str, float]:
    """``"20"`` → ``{"*": 20}``; ``"onnx=20,executorch=30"`` → per target.

    BadInput for an empty item, a limit that is not a positive finite number, a target named twice,
    and (given ``targets``, the bench's) a target that is not in the bench.
    """
    if text is None:
        return {}
    out: dict[str, float] = {}
    for item in text.split(","):
        name, eq, value = (s.strip() for s in item.partition("="))
        name = name if eq else "*"
        try:
            limit = float(value if eq else item)
        except ValueError:
            raise BadInput(f"malformed latency budget '{item}'; write 20 or onnx=20,executorch=30") from None
        if not name:
            raise BadInput(f"malformed latency budget '{item}' (no target before '='); write 20 or onnx=20,executorch=30")
        _check_latency_limit(item.strip(), limit)
        if targets is not None and name != "*" and name not in targets:
            from edgest.validate import did_you_mean

            raise BadInput(f"latency budget '{item.strip()}' names target '{name}', which is not in the bench "
                           f"({', '.join(targets)}){did_you_mean(name, targets)}")
        if name in out:
            raise BadInput(f"latency budget '{text}' gives {'a global limit' if name == '*' else name} twice; give each once")
        out[name] = limit
    return out


@dataclass(frozen=True)
class Cell:
    """One point of the matrix."""

    model: str
    target: str
    precision: str
    passes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        extra = f" +{'+'.join(self.passes)}" if self.passes else ""
        return f"{self.model} / {self.target} / {self.precision}{extra}"

    @property
    def folder(self) -> str:
        return "__".join([self.model, self.target, self.precision, *[p.replace(":", "-").replace(",", "-") for p in self.passes]])


def cell_key(cell: Cell, registry: Registry, weights: Path | None, settings: dict[str, Any]) -> str:
    """Hash of everything that decides a cell's outcome: the cell, the model's spec, the weights' bytes, the
    toolchain's versions, the bench's settings, and the code of edgest, the target's, the model's and the passes'
    packages (:func:`edgest.code_fingerprint.code_fingerprint`; a version string stays the same while the code
    of an editable install or a plugin under development changes)."""
    target_cls = registry.target(cell.target)
    entry = registry.model(cell.model)
    passes = [registry.passes.get(p.partition(":")[0]) for p in cell.passes]
    payload = {
        "cell": asdict(cell), "spec": asdict(entry.spec), "weights": sha256_of(Path(weights)) if weights else None,
        "toolchain": target_cls.toolchain_versions(), "edgest": importlib.metadata.version("edgest"),
        "code": code_fingerprint(target_cls, entry.factory, *[p for p in passes if p is not None]), **settings,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cached_report(run_dir: Path, key: str) -> Report | None:
    """The cell's report when its cache entry is whole: same key, edgest's run marker, a sound report.json
    and the very artifact it describes (sha256); None means compile the cell again."""
    try:
        if (run_dir / "cell.key").read_text() != key:
            return None
    except (OSError, UnicodeDecodeError):
        return None
    if (read_marker(run_dir) or {}).get("kind") != "run":
        return None
    try:
        return read_run(run_dir)
    except BadInput:
        return None


def _cell_record(cell: Cell, key: str, report: Report | None, error: str, cached: bool, seconds: float, run_dir: str) -> dict[str, Any]:
    rec: dict[str, Any] = {**asdict(cell), "key": key, "cached": cached, "seconds": round(seconds, 2), "run_dir": run_dir}
    if report is None:
        rec.update(status="error", error=error, accuracy=None, latency=None, artifact=None, toolchain={})
        return rec
    acc, lat = report.check("accuracy"), report.check("latency")
    art = report.artifact
    if report.check("streaming"):  # a --streaming cell: per-step latency, real-time factor, equivalence (no per-step lists)
        from edgest.report.bench_cells import streaming_record

        rec["streaming"] = streaming_record(report.check("streaming"))
    if report.coverage:  # a --coverage cell: its target's summary (nodes per verdict, ops not native), not the rows
        rec["coverage"] = {k: v for k, v in report.coverage.items() if k in ("status", "nodes", "not_native")}
    rec.update(
        status=report.status, error=report.error,
        accuracy={**acc.metrics, "status": acc.status, "limits": acc.limits} if acc else None,
        latency={**lat.metrics, "status": lat.status, "host": lat.host} if lat else None,
        artifact={"path": art.path, "format": art.format, "size_bytes": art.size_bytes, "sha256": art.sha256,
                  "compile_seconds": art.compile_seconds} if art else None,
        toolchain=art.toolchain if art else {},
        pass_records=[asdict(p) for p in report.passes], model_stats=report.model_stats,
    )
    return rec


def matrix(models: Sequence[str], targets: Sequence[str], precisions: Sequence[str], passes: Sequence[str] = ()) -> list[Cell]:
    """The matrix's cells in the order they run (model, then target, then precision)."""
    return [Cell(m, t, p, tuple(passes)) for m in models for t in targets for p in precisions]


def preflight(models: Sequence[str], weights: dict[str, Path], registry: Registry, folder: Path, *, stand_in: bool = False,
              model_options: dict[str, dict[str, Any]] | None = None,
              on_stage: Callable[[str, str, float], None] | None = None) -> tuple[dict[str, str], dict[str, Path]]:
    """Run each model once in eager on two seeded inputs, before any cell compiles (seconds, not a matrix of minutes).

    Returns the models refused (model → the reason, naming the fix) and the stand-in weights written
    into ``folder`` for those that ignore their input when ``stand_in`` is set (model → file; only
    for models without weights of their own). Each finding is also a warning on the active display.
    """
    from edgest import progress
    from edgest.model_options import resolve
    from edgest.responsive import (
        refusal,
        unresponsive_reason,
        write_responsive_weights,
    )

    refused: dict[str, str] = {}
    stand_ins: dict[str, Path] = {}
    t0 = time.perf_counter()
    if on_stage:
        on_stage("pre-flight", "start", 0.0)
    for m in models:
        entry = registry.model(m)
        spec = resolve(entry, None, (model_options or {}).get(m)) if (model_options or {}).get(m) else entry.spec
        progress.detail(f"{m}: one eager run on two inputs")
        why = unresponsive_reason(entry, weights.get(m), spec=spec)
        if why is None:
            continue
        if stand_in and m not in weights:
            folder.mkdir(parents=True, exist_ok=True)
            stand_ins[m] = write_responsive_weights(entry, folder / f"{m}.pt", spec=spec)
            progress.warn(f"stand-in weights for {m}: not trained; accuracy judged, task accuracy not ({why} at its init)")
            continue
        refused[m] = f"not compiled: {refusal(m, why, m in weights, 'bench')}"
        progress.warn(f"{refused[m]}")
    if on_stage:
        on_stage("pre-flight", "end", round(time.perf_counter() - t0, 3))
    return refused, stand_ins


def run_bench(
    models: Sequence[str], targets: Sequence[str], precisions: Sequence[str], out_dir: Path, *,
    passes: Sequence[str] = (), weights: dict[str, Path] | None = None, use_cache: bool = True,
    budget: Budget = Budget(), threads: int = 1, samples: int = 8, latency: LatencyConfig = LatencyConfig(),
    registry: Registry | None = None, on_cell: Callable[[Cell, str, int, int], None] | None = None,
    target_options: dict[str, dict[str, Any]] | None = None,
    model_options: dict[str, dict[str, Any]] | None = None,
    stand_in_weights: bool = False, on_stage: Callable[[str, str, float], None] | None = None,
    config: dict[str, str] | None = None, eval_dir: Path | None = None,
    executor: Executor | None = None, devices: dict[str, str] | None = None, streaming: bool = False,
    coverage: bool = False,
) -> dict[str, Any]:
    """Run the matrix, write ``bench.json`` (+ Markdown and HTML) into ``out_dir``, return the document.

    ``target_options`` maps a target name to the options its cells compile with, ``model_options``
    a model name to its model options (:mod:`edgest.model_options`); both are part of the cache key.
    Before any cell compiles, each model runs once in eager (:func:`preflight`): the cells of one
    that ignores its input are not compiled (status ``not_run``, the reason names the fix), and nor are the
    others' (the bench stops in seconds instead of failing after minutes), unless ``stand_in_weights`` gives
    it untrained stand-ins (accuracy judged, task accuracy not).
    ``on_stage`` hears the pre-flight and each compiled cell's stages; ``config`` (the ``--config``
    file's path and sha256) is recorded in the settings. ``eval_dir`` (the user's labelled clips,
    :mod:`edgest.data.eval`) is checked against every model before any cell, replaces the synthetic
    task set of each cell (not of stand-in models: untrained) and is part of the cache key.
    ``executor`` (:mod:`edgest.executors`; default local) decides where cells run; records, keys and reports
    are the same whichever runs them, and each record's ``ran_on`` says where it ran. ``devices`` maps a target
    (or ``*``: every target) to the device label its cells time on (Ray placement: resource ``device:<label>``).
    ``streaming`` compiles each model's step module (:mod:`edgest.streaming`): cells then carry ``streaming``
    (per-step p50/p90, real-time factor at the model's hop, the streaming check's figures).
    ``coverage`` adds the cell target's op coverage (compile ``coverage``) to each cell's report and record.
    """
    from edgest.bench_jobs import check_devices, run_cells, warm
    from edgest.plan_args import check_bench
    from edgest.report.bench_writers import write_bench_reports

    check_bench(models, targets, precisions, out_dir, weights, threads, samples)
    if streaming:  # every model must have a step module: refused before any cell, not once per cell
        from edgest.streaming.spec import check_models

        check_models(list(models), registry or get_registry())
    check_devices(executor, devices or {}, targets)
    with ExitStack() as held:
        held.enter_context(warm(executor, models, targets))  # a pool's workers start up during the pre-flight
        m = _prepare(models, targets, precisions, Path(out_dir), registry or get_registry(), weights or {},
                     model_options or {}, eval_dir, stand_in_weights, on_stage, target_options or {}, held)
        cells = matrix(models, targets, precisions, passes)
        in_matrix = len(cells)
        cells += reference_cells(models, targets, precisions)
        flags = {k: True for k, on in (("streaming", streaming), ("coverage", coverage)) if on}
        run = _CellRun(m, target_options or {}, {"threads": threads, "samples": samples, "latency": asdict(latency),
                                                 **flags}, use_cache, on_stage)
        records = run_cells(run, cells, executor, devices or {}, on_cell)
        _judge(records, in_matrix, budget)
        settings = {**run.settings, "models": list(models), "targets": list(targets), "precisions": list(precisions),
                    "passes": list(passes), "budget": asdict(budget)}
        doc = _document(m, settings, records, eval_dir, config, target_options or {})
        write_bench_reports(doc, m.out_dir)  # still under the folder's lock (edgest.folder_lock)
    return doc


def _document(m: _Matrix, settings: dict[str, Any], records: list[dict[str, Any]], eval_dir: Path | None,
              config: dict[str, str] | None, target_options: dict[str, Any]) -> dict[str, Any]:
    """bench.json's document: the host, the settings (weights, eval set, config file, options) and the cells."""
    from edgest.report.weights import weights_record

    models = settings["models"]
    return {
        "schema_version": BENCH_SCHEMA_VERSION, "kind": "edgest-bench",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": describe_host(),
        "settings": {**settings,
                     "weights": {n: weights_record(m.weights.get(n), "stand-in" if n in m.stand_ins else None) for n in models},
                     **({"eval": {"path": str(eval_dir), "key": m.eval_key}} if eval_dir else {}),
                     **({"config": dict(config)} if config else {}),
                     "target_options": dict(target_options), "model_options": m.model_options},
        "cells": records, "device_results": [],
    }


@dataclass(frozen=True)
class _Matrix:
    """What every cell of a bench shares once validated: registry, folder, weights (stand-ins included), refusals."""

    registry: Registry
    out_dir: Path
    weights: dict[str, Path]
    stand_ins: dict[str, Path]
    refused: dict[str, str]
    model_options: dict[str, dict[str, Any]]
    eval_dir: Path | None
    eval_key: str


def _judge(records: list[dict[str, Any]], in_matrix: int, budget: Budget) -> None:
    """Mark the matrix's own cells (the first ``in_matrix``; the rest are eager references), their budget
    violations, and every cell's speed-up over eager."""
    for i, rec in enumerate(records):
        rec["in_matrix"] = i < in_matrix
        rec["budget_violations"] = budget.violations(rec) if rec["in_matrix"] else []
    add_speedups(records)


def _prepare(models: Sequence[str], targets: Sequence[str], precisions: Sequence[str], out_dir: Path, reg: Registry,
             weights: dict[str, Path], model_options: dict[str, dict[str, Any]], eval_dir: Path | None,
             stand_in_weights: bool, on_stage: Callable[[str, str, float], None] | None,
             target_options: dict[str, dict[str, Any]], held: ExitStack) -> _Matrix:
    """Check every name, precision, option and the eval folder before any cell; claim the folder and hold its lock
    in ``held`` (:mod:`edgest.folder_lock`); run the pre-flight."""
    from edgest.folder_lock import claimed
    from edgest.target_options import check_bench_precision_options
    from edgest.validate import check_precisions

    for name in models:
        reg.model(name)
    check_precisions([reg.target(t) for t in targets], precisions)  # before any cell: no matrix of doomed cells
    check_bench_precision_options(target_options, {t: reg.target(t) for t in targets}, precisions)
    mopts = typed_for({n: reg.model(n) for n in models}, model_options)  # typed, and each variant builds
    eval_key = _eval_key(eval_dir, models, mopts, reg)  # a folder no model can use is refused before any cell
    out_dir = held.enter_context(claimed(out_dir))  # new, empty or a bench folder, never a user's; one bench at a time
    cells = out_dir / "cells"
    if cells.is_symlink() or (cells.exists() and not cells.is_dir()):
        raise BadInput(f"'{cells}' is a {'link' if cells.is_symlink() else 'file'}, where the bench keeps its cells; "
                       "move it away or pass --out (out_dir=) another folder")
    try:
        cells.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot write bench folder '{out_dir}': {exc.strerror}; pass --out (out_dir=) a writable folder") from None
    refused, stand_ins = preflight(models, weights, reg, out_dir / "stand-in-weights", stand_in=stand_in_weights,
                                   model_options=mopts, on_stage=on_stage)
    return _Matrix(reg, out_dir, {**weights, **stand_ins}, stand_ins, refused, mopts, eval_dir, eval_key)


@dataclass(frozen=True)
class _CellRun:
    """Runs one cell of a prepared matrix: from the cache when its key and artifact hold up, else compiled."""

    m: _Matrix
    target_options: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    use_cache: bool
    on_stage: Callable[[str, str, float], None] | None

    def key(self, cell: Cell) -> str:
        """The cell's cache key (:func:`cell_key` over this bench's settings)."""
        m = self.m
        topts = self.options(cell)
        extra = {k: v for k, v in (("target_options", topts), ("model_options", m.model_options.get(cell.model))) if v}
        task_key, _ = _task_settings(cell.model in m.stand_ins, m.eval_dir, m.eval_key)
        return cell_key(cell, m.registry, m.weights.get(cell.model), {**self.settings, **extra, **task_key})

    def options(self, cell: Cell) -> dict[str, Any]:
        """The target options this cell compiles with: those acting at its precision (:func:`options_at`)."""
        from edgest.target_options import options_at

        return options_at(self.m.registry.target(cell.target), cell.precision, self.target_options.get(cell.target, {}))

    def run_dir(self, cell: Cell) -> Path:
        """The cell's run folder in this bench's folder."""
        return self.m.out_dir / "cells" / cell.folder

    def stopped(self, cell: Cell) -> str:
        """Why the cell is not compiled at all (a pre-flight refusal), or ''."""
        return self.m.refused.get(cell.model) or _stopped_reason(self.m.refused)

    def cell(self, cell: Cell) -> tuple[dict[str, Any], bool]:
        """The cell's record and whether it came from the cache."""
        m = self.m
        key, run_dir, stopped = self.key(cell), self.run_dir(cell), self.stopped(cell)
        t0 = time.perf_counter()
        report = _cached_report(run_dir, key) if self.use_cache and not stopped else None
        cached, error = report is not None, stopped
        if not cached and not error:
            error = _reclaim_cell(run_dir)
        if not cached and not error:
            check = {k: self.settings[k] for k in ("threads", "samples", "streaming", "coverage") if k in self.settings}
            _, task_args = _task_settings(cell.model in m.stand_ins, m.eval_dir, m.eval_key)
            report, error = _compile_cell(cell, key, run_dir, m.weights.get(cell.model), self.options(cell),
                                          m.registry, latency=LatencyConfig(**self.settings["latency"]), on_stage=self.on_stage,
                                          model_options=m.model_options.get(cell.model), **check, **task_args)
        return self.record(cell, key, report, error, cached, time.perf_counter() - t0), cached

    def record(self, cell: Cell, key: str, report: Report | None, error: str, cached: bool, seconds: float) -> dict[str, Any]:
        """The cell's bench record from its report (or ``error``); ``not_run`` when the pre-flight stopped it."""
        rec = _cell_record(cell, key, report, error, cached, seconds, str(self.run_dir(cell).relative_to(self.m.out_dir)))
        if self.stopped(cell):
            rec["status"] = "not_run"
        return rec

    def from_cache(self, cell: Cell, key: str) -> tuple[Report | None, str]:
        """The cell's cached report when its entry under ``key`` is whole; else None and why."""
        report = _cached_report(self.run_dir(cell), key)
        return report, "" if report is not None else "its cache entry changed while the bench ran; run the bench again"


def _reclaim_cell(run_dir: Path) -> str:
    """A cell folder of this (marked) bench that lost its marker but holds a cell's files (cell.key, report.json)
    is recompiled, not an error: the bench's cells/ is the bench's own. One holding other files is kept: the
    error says so. '' when the cell may compile."""
    from edgest.outdir import read_marker

    if run_dir.is_dir() and not run_dir.is_symlink() and read_marker(run_dir) is None:
        if (run_dir / "cell.key").is_file() or (run_dir / "report.json").is_file():
            shutil.rmtree(run_dir)
        elif any(run_dir.iterdir()):
            return (f"cell folder '{run_dir}' holds files edgest did not write; move them out of it (or delete it) and "
                    "run the bench again")
    return ""


def _stopped_reason(refused: dict[str, str]) -> str:
    """Why a judgeable model's cells are not compiled either: a pre-flight refusal stops the whole matrix in
    seconds (the bench would fail anyway), instead of after minutes of compiling the other cells."""
    if not refused:
        return ""
    names = ", ".join(sorted(refused))
    return (f"not compiled: the bench stopped at the pre-flight because {names} cannot be judged (see its cells); "
            f"fix that, or leave it out of --models (models=)")


def _task_settings(stand_in: bool, eval_dir: Path | None, eval_key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(cache-key entries, compile arguments) of a cell's labelled set: none for untrained stand-ins (task accuracy
    would be judged with a weights file), else the eval clips when given."""
    if stand_in:
        return {"stand_in": True}, {"task_samples": 0}
    return ({"eval": eval_key}, {"eval_dir": eval_dir}) if eval_dir else ({}, {})


def _eval_key(eval_dir: Path | None, models: Sequence[str], model_options: dict[str, dict[str, Any]],
              registry: Registry) -> str:
    """The eval folder checked against every model (BadInput naming the first it does not fit), and its fingerprint."""
    if eval_dir is None:
        return ""
    from edgest.data.eval import fingerprint, scan
    from edgest.model_options import resolve

    sets = [scan(eval_dir, resolve(registry.model(m), None, model_options.get(m))) for m in models]
    return fingerprint(sets[0])


def _compile_cell(cell: Cell, key: str, run_dir: Path, weights: Path | None, target_options: dict[str, Any],
                  registry: Registry, **check: Any) -> tuple[Report | None, str]:
    """Compile one cell into ``run_dir`` and stamp its cache key; the report, or None and the error."""
    from edgest.passes.options import parse_pass_arg
    from edgest.pipeline import compile as compile_model

    (run_dir / "cell.key").unlink(missing_ok=True)  # ours, written after the run folder: the compile replaces the rest
    try:
        report = compile_model(cell.model, cell.target, passes=[parse_pass_arg(p) for p in cell.passes], weights=weights,
                               out_dir=run_dir, precision=cell.precision, force=True, registry=registry,
                               target_options=target_options, **check)
    except EdgestError as exc:
        return None, str(exc)
    atomic_write_text(run_dir / "cell.key", key)
    return report, ""


def reference_cells(models: Sequence[str], targets: Sequence[str], precisions: Sequence[str]) -> list[Cell]:
    """An eager fp32 cell per model when the matrix has none: what speed-ups are measured against.

    Timed once per model and cached like any cell; recorded with ``in_matrix: false`` and never
    judged against the budget.
    """
    if "eager" in targets and "fp32" in precisions:
        return []
    return [Cell(m, "eager", "fp32") for m in models]


def _p50(record: dict[str, Any]) -> float | None:
    p50 = (record.get("latency") or {}).get("p50_ms")
    return float(p50) if isinstance(p50, (int, float)) and math.isfinite(p50) and p50 > 0 else None


def add_speedups(records: list[dict[str, Any]]) -> None:
    """``speedup_vs_eager`` = the model's eager fp32 p50 / the cell's p50; that eager cell gets ``reference: true``."""
    base: dict[str, tuple[int, float]] = {}  # model → (index of its eager cell, that cell's p50)
    for i, r in enumerate(records):  # the matrix's own eager cell comes first, so it is preferred to an added one
        eager_p50 = _p50(r) if r["target"] == "eager" and r["precision"] == "fp32" else None
        if eager_p50 is not None:
            base.setdefault(r["model"], (i, eager_p50))
    for i, r in enumerate(records):
        ref, p50 = base.get(r["model"]), _p50(r)
        r["reference"] = ref is not None and ref[0] == i
        r["speedup_vs_eager"] = round(ref[1] / p50, 3) if ref is not None and p50 is not None else None


def over_budget(doc: dict[str, Any]) -> list[str]:
    """``"cell: reason; reason"`` for every cell over budget, and every cell that errored."""
    out = []
    for c in doc["cells"]:
        label = Cell(c["model"], c["target"], c["precision"], tuple(c["passes"])).label
        if c["budget_violations"]:
            out.append(f"{label}: {'; '.join(c['budget_violations'])}")
    return out
