"""``edgest bench``: a model × target × precision matrix through the same pipeline as compile.

Cells run one after another, a failing cell is recorded and the run goes on. A cell whose
inputs are unchanged (model spec, weights hash, passes and options, target and its options,
precision, toolchain versions, edgest version) is reused from the cache instead of recompiled.
Budgets turn the matrix into a CI gate.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgest.checks.latency import LatencyConfig
from edgest.errors import BadInput, EdgestError
from edgest.host import describe as describe_host
from edgest.plugins import Registry, get_registry
from edgest.records import Report
from edgest.report.writers import read_json

BENCH_SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class Budget:
    """Limits a cell must meet; ``max_latency_ms`` maps a target name (or ``*``) to a limit."""

    min_sqnr_db: float | None = None
    max_accuracy_drop: float | None = None  # percentage points of top-1 agreement lost vs eager
    max_latency_ms: dict[str, float] = field(default_factory=dict)

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


def parse_latency_budget(text: str | None) -> dict[str, float]:
    """``"20"`` → ``{"*": 20}``; ``"onnx=20,executorch=30"`` → per target."""
    if not text:
        return {}
    out: dict[str, float] = {}
    for item in text.split(","):
        name, eq, value = item.partition("=")
        try:
            out[name.strip() if eq else "*"] = float(value if eq else name)
        except ValueError:
            raise BadInput(f"malformed latency budget '{item}'; write 20 or onnx=20,executorch=30") from None
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


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cell_key(cell: Cell, registry: Registry, weights: Path | None, settings: dict[str, Any]) -> str:
    """Hash of everything that decides a cell's outcome."""
    target_cls = registry.target(cell.target)
    spec = registry.model(cell.model).spec
    payload = {
        "cell": asdict(cell), "spec": asdict(spec), "weights": _sha256_file(weights) if weights else None,
        "toolchain": target_cls.toolchain_versions(), "edgest": importlib.metadata.version("edgest"), **settings,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cell_record(cell: Cell, key: str, report: Report | None, error: str, cached: bool, seconds: float, run_dir: str) -> dict[str, Any]:
    rec: dict[str, Any] = {**asdict(cell), "key": key, "cached": cached, "seconds": round(seconds, 2), "run_dir": run_dir}
    if report is None:
        rec.update(status="error", error=error, accuracy=None, latency=None, artifact=None, toolchain={})
        return rec
    acc, lat = report.check("accuracy"), report.check("latency")
    art = report.artifact
    rec.update(
        status=report.status, error=report.error,
        accuracy={**acc.metrics, "status": acc.status, "limits": acc.limits} if acc else None,
        latency={**lat.metrics, "status": lat.status, "host": lat.host} if lat else None,
        artifact={"path": art.path, "format": art.format, "size_bytes": art.size_bytes, "sha256": art.sha256,
                  "compile_seconds": art.compile_seconds} if art else None,
        toolchain=art.toolchain if art else {},
        pass_records=[asdict(p) for p in report.passes],
    )
    return rec


def run_bench(
    models: Sequence[str], targets: Sequence[str], precisions: Sequence[str], out_dir: Path, *,
    passes: Sequence[str] = (), weights: dict[str, Path] | None = None, use_cache: bool = True,
    budget: Budget = Budget(), threads: int = 1, samples: int = 8, latency: LatencyConfig = LatencyConfig(),
    registry: Registry | None = None, on_cell: Callable[[Cell, str, int, int], None] | None = None,
    target_options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the matrix, write ``bench.json`` (+ Markdown and HTML) into ``out_dir``, return the document.

    ``target_options`` maps a target name to the options its cells compile with (part of the cache key).
    """
    from edgest.passes.options import parse_pass_arg
    from edgest.pipeline import compile as compile_model
    from edgest.report.bench_writers import write_bench_reports

    reg = registry or get_registry()
    for m in models:
        reg.model(m)
    for t in targets:
        reg.target(t)
    weights = weights or {}
    out_dir = Path(out_dir)
    try:
        (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot write bench folder '{out_dir}': {exc.strerror}; pass --out a writable folder") from None
    settings = {"threads": threads, "samples": samples, "latency": asdict(latency)}
    cells = [Cell(m, t, p, tuple(passes)) for m in models for t in targets for p in precisions]
    records = []
    for i, cell in enumerate(cells):
        topts = (target_options or {}).get(cell.target, {})
        key = cell_key(cell, reg, weights.get(cell.model), {**settings, **({"target_options": topts} if topts else {})})
        run_dir = out_dir / "cells" / cell.folder
        report, error, cached = None, "", False
        t0 = time.perf_counter()
        if use_cache and (run_dir / "report.json").exists() and (run_dir / "cell.key").exists() and (run_dir / "cell.key").read_text() == key:
            report, cached = read_json(run_dir / "report.json"), True
        else:
            if on_cell:
                on_cell(cell, "running", i, len(cells))
            try:
                report = compile_model(
                    cell.model, cell.target, passes=[parse_pass_arg(p) for p in cell.passes], weights=weights.get(cell.model),
                    out_dir=run_dir, precision=cell.precision, threads=threads, samples=samples, latency=latency,
                    force=True, registry=reg, target_options=topts,
                )
                (run_dir / "cell.key").write_text(key)
            except EdgestError as exc:
                error = str(exc)
        rec = _cell_record(cell, key, report, error, cached, time.perf_counter() - t0, str(run_dir.relative_to(out_dir)))
        rec["budget_violations"] = budget.violations(rec)
        records.append(rec)
        if on_cell:
            on_cell(cell, "cached" if cached else rec["status"], i + 1, len(cells))
    _add_speedups(records)
    doc = {
        "schema_version": BENCH_SCHEMA_VERSION, "kind": "edgest-bench",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": describe_host(),
        "settings": {**settings, "models": list(models), "targets": list(targets), "precisions": list(precisions),
                     "passes": list(passes), "budget": asdict(budget),
                     "target_options": dict(target_options or {})},
        "cells": records, "device_results": [],
    }
    write_bench_reports(doc, out_dir)
    return doc


def _add_speedups(records: list[dict[str, Any]]) -> None:
    eager = {r["model"]: r["latency"]["p50_ms"] for r in records
             if r["target"] == "eager" and r["precision"] == "fp32" and r.get("latency") and r["latency"].get("p50_ms")}
    for r in records:
        p50 = (r.get("latency") or {}).get("p50_ms")
        r["speedup_vs_eager"] = round(eager[r["model"]] / p50, 3) if p50 and r["model"] in eager else None


def over_budget(doc: dict[str, Any]) -> list[str]:
    """``"cell: reason; reason"`` for every cell over budget, and every cell that errored."""
    out = []
    for c in doc["cells"]:
        label = Cell(c["model"], c["target"], c["precision"], tuple(c["passes"])).label
        if c["budget_violations"]:
            out.append(f"{label}: {'; '.join(c['budget_violations'])}")
    return out
