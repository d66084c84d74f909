"""edgest's candidates: ``edgest.bench.run_bench`` over targets × precisions into the cache folder.

The bench's cache makes a re-run near-instant. Models that ignore their input at their papers' init
(EMOv2, spiking LMUFormer) compile on the stand-in weights ``edgest bench --stand-in-weights``
writes, and the peers use that very file; other models keep their seeded random init.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgest.checks.latency import LatencyConfig

#: each cell's own latency check is a token run: every artifact is re-timed in turns by the timing process
CELL_LATENCY = LatencyConfig(warmup=1, min_runs=3, min_seconds=0.0)


def weights_for(model: str, folder: Path) -> tuple[Path | None, str]:
    """Without edgest cells: the stand-in weights file (written into ``folder``) or None (random init), and a label."""
    from edgest.testing.weights import bench_weights

    chosen = bench_weights([model], {}, folder)[model]
    return chosen.path, _label(chosen.path)


def _label(path: Path | None) -> str:
    return ("random init (seeded)" if path is None else
            f"stand-in weights ({path.name}: layer scales at 1, BatchNorms calibrated on noise; the model ignores its "
            "input at its paper's init; not trained)")


def candidates(model: str, targets: Sequence[str], precisions: Sequence[str], folder: Path,
               trained: Path | None = None) -> tuple[Path | None, str, list[dict[str, Any]]]:
    """Compile (or reuse) edgest's cells for ``model`` (on ``trained`` weights if given); (weights file, label, rows)."""
    from edgest.bench import run_bench

    doc = run_bench([model], list(targets), list(precisions), folder, stand_in_weights=trained is None,
                    weights={model: trained} if trained else None, latency=CELL_LATENCY)
    record = doc["settings"]["weights"].get(model) or {}
    weights = Path(record["path"]) if record.get("path") else None
    if trained is not None:
        return trained, f"trained ({trained})", _rows(doc, folder)
    return weights, _label(weights), _rows(doc, folder)


def _rows(doc: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """The candidate rows of a bench document's cells (not its eager reference cell)."""
    rows = []
    for cell in doc["cells"]:
        if not cell.get("in_matrix"):
            continue  # the eager reference cell run_bench adds
        row = {"key": f"edgest-{cell['target']}-{cell['precision']}", "side": "edgest", "runner": "edgest",
               "label": f"edgest {cell['target']} {cell['precision']}", "precision": cell["precision"],
               "target": cell["target"], "options": {}, "how": f"edgest.bench.run_bench cell ({'cached' if cell['cached'] else 'compiled'})",
               "edgest_status": cell["status"], "edgest_sqnr_db": (cell.get("accuracy") or {}).get("sqnr_db")}
        if cell.get("artifact"):
            row["path"] = str(folder / cell["run_dir"] / cell["artifact"]["path"])
            row["build_s"] = cell["artifact"]["compile_seconds"]
        else:
            row["error"] = (cell.get("error") or cell["status"]).splitlines()[0][:300]
        rows.append(row)
    return rows
