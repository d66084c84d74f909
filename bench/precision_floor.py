"""How far eager PyTorch itself moves at fp16, bf16 and with int8 weights, per zoo model: the floor under any target.

No target is involved: a copy of the model cast to the dtype runs on the same seeded inputs as
``edgest compile`` (seed 0) and is compared with eager fp32 at the compile's limits; with trained
``--weights`` the compile's labelled samples join them and the figures are pooled, as the compile's are. A model that
breaks them here cannot pass at that precision on any target; this is what a failed fp16/bf16
check quotes (:mod:`edgest.checks.attribution`). The int8 column rounds only the conv and linear weights (per output channel,
symmetric, activations stay fp32): every int8 scheme does at least that, so a model that breaks the int8
limits here cannot pass post-training int8 on any target. Models that ignore their input at init run on stand-in weights
(:func:`edgest.testing.weights.bench_weights`), or pass ``--weights MODEL=FILE``.

``python bench/precision_floor.py [--models lmuformer_spiking,squeezetime] [--samples 8] [--json out.json]``
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from edgest.checks import accuracy
from edgest.checks.attribution import HALF_DTYPES, eager_in_dtype
from edgest.checks.eager import eager_outputs
from edgest.host import cpu_model
from edgest.model import load_weights
from edgest.pipeline import TASK_SAMPLES, task_set
from edgest.plugins import get_registry
from edgest.testing.weights import BenchWeights, bench_weights

if TYPE_CHECKING:
    import torch


def int8_weights(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` whose conv and linear weights are rounded to int8 per output channel (symmetric)."""
    import torch

    q = copy.deepcopy(module)
    with torch.no_grad():
        for m in q.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
                w = m.weight
                scale = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True).clamp_min(1e-12) / 127.0
                w.copy_(torch.round(w / scale).clamp(-127, 127) * scale)
    return q


def floor_row(model: str, weights: BenchWeights, samples: int) -> dict[str, Any]:
    """Eager fp16, bf16 and int8-weights against eager fp32 for ``model``: SQNR, top-1 agreement, verdict at the limits."""
    entry = get_registry().model(model)
    module = entry.build()
    if weights.path is not None:
        load_weights(module, weights.path)
    inputs = accuracy.seeded_inputs([entry.spec.input.shape], samples, 0)
    task = task_set(entry.spec, TASK_SAMPLES, 0) if weights.trained else None
    inputs += task.inputs if task else []
    reference = eager_outputs(module, inputs)
    row: dict[str, Any] = {"model": model, "weights": weights.label}
    for precision in (*HALF_DTYPES, "int8"):
        t0 = time.perf_counter()
        if precision == "int8":
            outputs = eager_outputs(int8_weights(module), inputs)
        else:
            outputs = eager_in_dtype(module, inputs, precision)
        m = accuracy.compare(reference, outputs)
        broken = accuracy.within(m, accuracy.LIMITS[precision])
        row[precision] = {"sqnr_db": m["sqnr_db"], "top1_agreement": m["top1_agreement"], "passes": not broken,
                          "sqnr_db_inputs": accuracy.compare(reference[:samples], outputs[:samples])["sqnr_db"],
                          "labelled_samples": len(inputs) - samples, "seconds": round(time.perf_counter() - t0, 1)}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated zoo names (default: every full config)")
    ap.add_argument("--samples", type=int, default=8, help="seeded inputs per model (the compile's default)")
    ap.add_argument("--weights", action="append", default=[], help="MODEL=FILE, repeatable (trained checkpoints)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON (after every model)")
    args = ap.parse_args()
    registry = get_registry()
    models = args.models.split(",") if args.models else sorted(n for n in registry.models if "tiny" not in n)
    weights = bench_weights(models, dict(w.split("=", 1) for w in args.weights), tempfile.mkdtemp(prefix="edgest-floor-"))
    console, rows = Console(width=200), []
    for model in models:
        rows.append(floor_row(model, weights[model], args.samples))
        r = rows[-1]
        console.print(f"{model}: " + ", ".join(f"{p} {r[p]['sqnr_db']:.1f} dB" for p in (*HALF_DTYPES, "int8")))
        if args.json:
            args.json.write_text(json.dumps({"cpu": cpu_model(), "samples": args.samples, "rows": rows}, indent=2))
    table = Table(title=f"Eager PyTorch at reduced precision vs eager fp32, {args.samples} seeded inputs "
                        f"(trained: + {TASK_SAMPLES} labelled samples, pooled) ({cpu_model()})")
    for col in ("model", "weights", "fp16 SQNR dB", "fp16 top-1", "fp16 limits", "bf16 SQNR dB", "bf16 top-1",
                "bf16 limits", "int8-w SQNR dB", "int8-w top-1", "int8 limits"):
        table.add_column(col)
    for r in rows:
        cells = [r["model"], r["weights"]]
        for p in (*HALF_DTYPES, "int8"):
            cells += [f"{r[p]['sqnr_db']:.1f}", f"{r[p]['top1_agreement']:.0%}", "met" if r[p]["passes"] else "BROKEN"]
        table.add_row(*cells)
    console.print(table)


if __name__ == "__main__":
    main()
