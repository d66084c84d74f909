"""A 2-model × 2-target × 2-precision bench document built from cell records (no compile), for report tests.

Its cells cover every state a report must draw: passed, failed (crossed), incomplete with both
figures (hollow), incomplete without latency and an error (not plotted; reason in the table),
one over a latency budget, the added eager reference per model, and a merged device result.
Speed-ups and budget verdicts come from edgest's own code (``add_speedups``, ``Budget``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from edgest.bench import Budget, add_speedups
from edgest.checks.latency import LatencyConfig

MODELS = ("squeezetime_tiny", "emov2_tiny_video")
TARGETS = ("onnx", "executorch")
PRECISIONS = ("fp32", "int8")
BUDGET = Budget(max_latency_ms={"onnx": 2.0})
#: (model, target, precision) → status, p50 ms, SQNR dB, error
FIGURES: dict[tuple[str, str, str], tuple[str, float | None, float | None, str]] = {
    ("squeezetime_tiny", "onnx", "fp32"): ("passed", 0.57, 141.4, ""),
    ("squeezetime_tiny", "onnx", "int8"): ("passed", 0.41, 32.5, ""),
    ("squeezetime_tiny", "executorch", "fp32"): ("passed", 0.93, 130.2, ""),
    ("squeezetime_tiny", "executorch", "int8"): ("failed", 0.52, 18.2, "accuracy: SQNR 18.2 dB < 20 dB (int8 limit)"),
    ("emov2_tiny_video", "onnx", "fp32"): ("passed", 2.1, 118.0, ""),
    ("emov2_tiny_video", "onnx", "int8"): ("incomplete", 1.4, 27.5, "accuracy not judged: the eager output is the same "
                                           "for all 8 inputs; pass trained weights (--weights, from edgest train)"),
    ("emov2_tiny_video", "executorch", "fp32"): ("error", None, None, "lowering failed: executorch has no kernel for "
                                                 "aten.roll; drop --target executorch or add a pass"),
    ("emov2_tiny_video", "executorch", "int8"): ("incomplete", None, 25.0, "latency not run: the runtime crashed twice"),
    ("squeezetime_tiny", "eager", "fp32"): ("passed", 7.9, 200.0, ""),
    ("emov2_tiny_video", "eager", "fp32"): ("passed", 12.0, 200.0, ""),
}
SHA = {key: f"{i:02d}" * 32 for i, key in enumerate(FIGURES)}


def cell(model: str, target: str, precision: str, in_matrix: bool = True) -> dict[str, Any]:
    """One cell record as ``edgest bench`` writes it (before speed-ups and budget)."""
    status, p50, sqnr, error = FIGURES[(model, target, precision)]
    rec: dict[str, Any] = {"model": model, "target": target, "precision": precision, "passes": [], "key": "k" * 16,
                           "cached": target == "eager", "seconds": 3.0, "run_dir": f"cells/{model}__{target}__{precision}",
                           "status": status, "error": error, "toolchain": {}, "in_matrix": in_matrix}
    rec["accuracy"] = None if sqnr is None else {"sqnr_db": sqnr, "max_abs": 1e-3, "top1_agreement": 1.0, "status": "passed"}
    rec["latency"] = None if p50 is None else {"p50_ms": p50, "p90_ms": p50 * 1.2, "runs": 30, "warmup": 5, "threads": 1,
                                              "status": "passed"}
    rec["artifact"] = None if status == "error" else {"path": "model", "format": target, "size_bytes": 1_000_000,
                                                     "sha256": SHA[(model, target, precision)], "compile_seconds": 2.0}
    return rec


def bench_document() -> dict[str, Any]:
    """The whole document: 8 matrix cells, 2 added eager references, one device result."""
    records = [cell(m, t, p) for m in MODELS for t in TARGETS for p in PRECISIONS]
    records += [cell(m, "eager", "fp32", in_matrix=False) for m in MODELS]
    for r in records:
        r["budget_violations"] = BUDGET.violations(r) if r["in_matrix"] else []
    add_speedups(records)
    device = {"kind": "edgest-device-report", "model": "squeezetime_tiny", "target": "onnx", "precision": "fp32",
              "artifact_sha256": SHA[("squeezetime_tiny", "onnx", "fp32")],
              "device": {"name": "pixel-8", "os": "Android 14", "machine": "aarch64", "runtime": "onnxruntime",
                         "runtime_version": "1.20.0"},
              "accuracy": {"status": "passed", "sqnr_db": 139.0, "max_abs": 1e-6, "top1_agreement": 1.0},
              "latency": {"p50_ms": 4.2, "p90_ms": 4.9, "cold_load_ms": 120.0, "threads": 1, "sustained_p50_ms": []}}
    latency = LatencyConfig(warmup=5, min_runs=30, min_seconds=2.0)
    return {"schema_version": "1.0", "kind": "edgest-bench", "created": "2026-01-01T00:00:00+00:00",
            "host": {"cpu": "Test CPU", "cpu_count": 2, "os": "Linux", "machine": "x86_64"},
            "settings": {"threads": 1, "samples": 8, "latency": asdict(latency), "models": list(MODELS),
                         "targets": list(TARGETS), "precisions": list(PRECISIONS), "passes": [],
                         "budget": {"min_sqnr_db": None, "max_accuracy_drop": None, "max_latency_ms": BUDGET.max_latency_ms},
                         "weights": {"squeezetime_tiny": {"kind": "random-init"},
                                     "emov2_tiny_video": {"kind": "file", "path": "/w/emov2.pt", "sha256": "ab" * 32}}},
            "cells": records, "device_results": [device]}
