"""Accuracy of an artifact against eager PyTorch on the same seeded inputs.

NumPy only, so the same code runs inside a device bundle without torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: dB reported when the outputs are bit-identical (JSON has no infinity)
SQNR_CAP_DB = 200.0

#: default limits per precision; the report states the ones it used
LIMITS: dict[str, dict[str, float]] = {
    "fp32": {"min_sqnr_db": 40.0, "min_top1_agreement": 1.0},
    "fp16": {"min_sqnr_db": 25.0, "min_top1_agreement": 0.98},
    "bf16": {"min_sqnr_db": 20.0, "min_top1_agreement": 0.95},
    "int8": {"min_sqnr_db": 15.0, "min_top1_agreement": 0.95},
}

#: task-accuracy limits per precision, applied only when the weights are trained: with random
#: initial weights task top-1 is chance level, so a drop says nothing about the artifact
TASK_LIMITS: dict[str, dict[str, float]] = {
    "int8": {"max_task_top1_drop_pts": 1.0},
}


def seeded_inputs(shapes: Sequence[tuple[int, ...]], count: int, seed: int) -> list[list[np.ndarray]]:
    """``count`` fresh standard-normal input sets, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s, dtype=np.float32) for s in shapes] for _ in range(count)]


def compare(reference: Sequence[np.ndarray], actual: Sequence[np.ndarray]) -> dict[str, float]:
    """Metrics of ``actual`` vs ``reference``: one array per sample (first output of each run).

    top-1 agreement is the share of samples (rows, for batched outputs) whose argmax over the
    last axis agrees; it is only meaningful for classifier-like outputs.
    """
    if len(reference) != len(actual):
        raise ValueError(f"{len(reference)} reference outputs but {len(actual)} actual ones")
    for r, a in zip(reference, actual):
        if r.shape != a.shape:
            raise ValueError(f"output shape {a.shape} differs from the reference {r.shape}")
    ref = np.concatenate([np.asarray(r, np.float64).ravel() for r in reference])
    act = np.concatenate([np.asarray(a, np.float64).ravel() for a in actual])
    err = act - ref
    noise = float(np.sum(err**2))
    signal = float(np.sum(ref**2))
    sqnr = SQNR_CAP_DB if noise == 0.0 else min(SQNR_CAP_DB, 10.0 * np.log10(max(signal, 1e-300) / noise))
    denom = float(np.linalg.norm(ref) * np.linalg.norm(act))
    cosine = 1.0 if denom == 0.0 else float(np.dot(ref, act) / denom)
    ref_top = np.concatenate([np.asarray(r).reshape(-1, r.shape[-1]).argmax(-1) for r in reference])
    act_top = np.concatenate([np.asarray(a).reshape(-1, a.shape[-1]).argmax(-1) for a in actual])
    return {
        "max_abs": float(np.max(np.abs(err))) if err.size else 0.0,
        "mean_abs": float(np.mean(np.abs(err))) if err.size else 0.0,
        "sqnr_db": float(sqnr),
        "cosine": cosine,
        "top1_agreement": float(np.mean(ref_top == act_top)),
        "output_scale": float(np.max(np.abs(ref))) if ref.size else 0.0,
    }


#: outputs that differ across inputs by no more than this fraction of their largest magnitude count as
#: the same: EMOv2 at init differs by 4e-8..8e-8 of its scale (float32 rounding), real models by 1e-2 and more
CONSTANT_RTOL = 1e-5


def constant_reference(reference: Sequence[np.ndarray]) -> str | None:
    """Why comparing against ``reference`` would prove nothing, or None.

    An eager output that is all zeros, or the same for every input (to :data:`CONSTANT_RTOL` of its
    scale: float32 rounding makes a model that ignores its input differ in the last bits), means the
    model ignores its input at these weights (e.g. a spiking model whose neurons never reach
    threshold at random initialisation): any artifact that returns that constant would "pass".
    """
    arrays = [np.asarray(r, dtype=np.float64) for r in reference]
    if not arrays or any(a.size == 0 for a in arrays):
        return None
    if all(not np.any(a) for a in arrays):
        return f"the eager output is all zeros on every one of the {len(arrays)} inputs"
    if len(arrays) > 1 and all(a.shape == arrays[0].shape for a in arrays):
        scale = max(float(np.abs(a).max()) for a in arrays)
        spread = max(float(np.abs(a - arrays[0]).max()) for a in arrays[1:])
        if spread <= CONSTANT_RTOL * scale:
            exact = "" if spread == 0 else f" to {spread / scale:.0e} of its scale"
            return f"the eager output is the same{exact} for all {len(arrays)} inputs"
    return None


def task_top1(eager: Sequence[np.ndarray], actual: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict[str, float]:
    """Task top-1 of eager and of the artifact on a labelled set, and the drop in percentage points.

    One array of logits per sample (rows for batched outputs) and one array of labels per sample.
    """
    if not (len(eager) == len(actual) == len(labels)):
        raise ValueError(f"{len(eager)} eager outputs, {len(actual)} actual ones and {len(labels)} label sets")
    y = np.concatenate([np.asarray(lab).ravel() for lab in labels])
    ref = np.concatenate([np.asarray(r).reshape(-1, r.shape[-1]).argmax(-1) for r in eager])
    act = np.concatenate([np.asarray(a).reshape(-1, a.shape[-1]).argmax(-1) for a in actual])
    if not (ref.size == act.size == y.size):
        raise ValueError(f"{y.size} labels but {act.size} predictions")
    top_e, top_a = float(np.mean(ref == y)), float(np.mean(act == y))
    return {"task_top1": top_a, "task_top1_eager": top_e, "task_top1_drop_pts": round(100.0 * (top_e - top_a), 6)}


def within(metrics: dict[str, float], limits: dict[str, float]) -> list[str]:
    """The limits ``metrics`` break, as readable strings (empty when all hold)."""
    broken = []
    if metrics["sqnr_db"] < limits.get("min_sqnr_db", -np.inf):
        broken.append(f"SQNR {metrics['sqnr_db']:.1f} dB < {limits['min_sqnr_db']} dB")
    if metrics["top1_agreement"] < limits.get("min_top1_agreement", -np.inf):
        broken.append(f"top-1 agreement {metrics['top1_agreement']:.1%} < {limits['min_top1_agreement']:.0%}")
    drop = metrics.get("task_top1_drop_pts")
    if drop is not None and drop > limits.get("max_task_top1_drop_pts", np.inf):
        broken.append(f"task top-1 drop {drop:.1f} pt > {limits['max_task_top1_drop_pts']:g} pt")
    return broken
