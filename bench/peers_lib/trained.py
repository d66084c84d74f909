"""Peers and edgest's cells judged on trained weights, as ``edgest compile --weights`` judges an artifact.

Issue 22's rule: a candidate counts only if it meets edgest's own limits for its precision on the
same inputs, and an int8 one also keeps the task top-1 drop within 1 pt on trained tiny variants.
Random-init full models cannot show a task drop, so ``bench/peers.py --trained-weights DIR`` builds
every candidate a second time from each model's trained tiny variant (:data:`TINY_OF`, weights
``DIR/<variant>.pt``, as ``edgest train`` writes them), runs it on the compile's inputs (the seeded
random ones plus :data:`edgest.data.tasks.TASK_SAMPLES` labelled synthetic clips) and judges it with
:func:`edgest.checks.run.accuracy_check` at the limits a compile with ``--weights`` uses. A candidate
counts on the full model only if it is faithful there *and* on the trained variant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: the trained tiny variant each full zoo model is judged on (same family, same code path; emov2_1m
#: classifies images, and its family's trained tiny variant is the video one)
TINY_OF = {"squeezetime": "squeezetime_tiny", "lmuformer": "lmuformer_tiny", "emov2_1m": "emov2_tiny_video",
           "emov2_1m_video": "emov2_tiny_video", "vivit_fa_ti": "vivit_fa_tiny", "vivit_fe_ti": "vivit_fe_tiny"}


def variant_weights(model: str, folder: Path | None) -> tuple[str, Path] | None:
    """``(variant, weights file)`` for ``model`` under ``folder``, or None (no folder, no variant, no file)."""
    variant = TINY_OF.get(model, model if model.endswith("_tiny") or "_tiny_" in model else "")
    if folder is None or not variant or not (folder / f"{variant}.pt").is_file():
        return None
    return variant, folder / f"{variant}.pt"


def labelled(model: str, module: Any, count: int, seed: int) -> tuple[Any, list[np.ndarray]] | None:
    """The compile's labelled set for ``model`` (``count`` clips, ``seed``) and eager's first output on each; None for 0."""
    if count < 1:
        return None
    from edgest.checks.eager import eager_output_sets
    from edgest.data.tasks import task_set
    from edgest.plugins import get_registry

    task = task_set(get_registry().model(model).spec, count, seed)
    if task is None:
        return None
    return task, [o[0] for o in eager_output_sets(module, task.inputs)]


def judge(candidate: dict[str, Any], facts: dict[str, Any], reference: list[list[np.ndarray]],
          outputs: list[list[np.ndarray]], task: tuple[Any, list[np.ndarray]], runner: Any, seed: int) -> dict[str, Any]:
    """The compile's accuracy verdict on ``runner``: its random-input ``outputs`` pooled with its outputs on the task set."""
    from edgest.checks.accuracy import LIMITS, TASK_LIMITS
    from edgest.checks.isolated import ChildOutcome
    from edgest.checks.run import accuracy_check, task_note
    from peers_lib.tables import judged_at

    labelled_set, task_ref = task
    at = judged_at(candidate, facts)
    limits = {**LIMITS[at], **TASK_LIMITS.get(at, {})}
    on_task = [list(runner.run(xs)) for xs in labelled_set.inputs]
    check = accuracy_check([r[0] for r in reference], ChildOutcome(outputs=outputs + on_task), limits, seed,
                           labelled_set, task_ref, task_note(at, True, limits), reference)
    keep = ("sqnr_db", "top1_agreement", "task_top1", "task_top1_eager", "task_top1_drop_pts", "task_sqnr_db", "sqnr_db_inputs")
    return {"status": check.status, "reason": check.reason, "judged_at": at, "limits": limits,
            **{k: check.metrics[k] for k in keep if k in check.metrics}}


def verdicts(model: str, folder: Path | None, cells: dict[str, list[str]], peers: list[str], cache: Path,
             script: Path, samples: int, seed: int) -> dict[str, Any] | None:
    """Every candidate of ``model`` rebuilt from its trained tiny variant and judged there; None without weights.

    Returns the variant, its weights, and per candidate key the verdict (:func:`judge`) or why there is none.
    """
    found = variant_weights(model, folder)
    if found is None:
        if folder is not None:
            variant = TINY_OF.get(model, model)
            print(f"{model}: not judged on trained weights: no {folder / (variant + '.pt')} (make it with "
                  f"edgest train --model {variant} --out {folder / (variant + '.pt')})", flush=True)
        return None
    from edgest.data.tasks import TASK_SAMPLES
    from peers_lib import edgest_side, worker
    from peers_lib.prepare import build_all

    variant, weights = found
    root = cache / f"{variant}-trained"
    print(f"{model}: judged on trained {variant} ({weights})", flush=True)
    mine = [r for target, precisions in cells.items()
            for r in edgest_side.candidates(variant, [target], precisions, root / "edgest", weights)[2]]
    candidates = build_all(variant, weights, peers, root, seed) + mine
    runnable = [c for c in candidates if "error" not in c]
    spec = {"model": variant, "weights": str(weights), "threads": 1, "samples": samples, "seed": seed, "rounds": 0,
            "task_samples": TASK_SAMPLES, "candidates": runnable}
    results = worker.run(script, spec, root / "judged") if runnable else {}
    out = {}
    for c in candidates:
        result = results.get(c["key"]) or {}
        out[c["key"]] = result.get("judged") or {"status": "not_run", "reason": c.get("error") or result.get("error", "not run")}
    return {"variant": variant, "weights": str(weights), "verdicts": out}


def apply(rows: list[dict[str, Any]], judged: dict[str, Any] | None) -> None:
    """Give each row its trained verdict; a row that fails there is not faithful (no verdict: it stays as it is)."""
    if judged is None:
        return
    for r in rows:
        verdict = judged["verdicts"].get(r["key"])
        r["trained"] = verdict
        if verdict and verdict["status"] == "failed" and r.get("faithful"):
            r["faithful"] = False
            r["broken"] = [*r.get("broken", []), f"on trained {judged['variant']}: {verdict['reason']}"]


def markdown(model: str, judged: dict[str, Any], labels: dict[str, str]) -> str:
    """The trained variant's verdicts as a table: status, pooled SQNR, agreement, task top-1 drop, why it failed."""
    head = ["candidate", "verdict", "SQNR dB (pooled)", "SQNR dB (clips)", "top-1 agr.", "task top-1 drop pt", "why"]
    title = (f"**{model}: every candidate rebuilt from trained {judged['variant']} and judged as a compile with "
             "--weights judges** (the random inputs + labelled clips, limits of its precision)")
    lines = [title, "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, v in judged["verdicts"].items():
        nums = [f"{v[k]:.1f}" if k in v else "-" for k in ("sqnr_db", "task_sqnr_db")]
        agr = f"{v['top1_agreement']:.1%}" if "top1_agreement" in v else "-"
        drop = f"{v['task_top1_drop_pts']:.1f}" if "task_top1_drop_pts" in v else "-"
        why = (v.get("reason") or "").replace("|", "/")[:160]
        lines.append(f"| {labels.get(key, key)} | {v['status']} | {nums[0]} | {nums[1]} | {agr} | {drop} | {why} |")
    return "\n".join(lines) + "\n"
