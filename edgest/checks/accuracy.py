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


def _rows(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Every array as rows over its last axis (a 0-d output is one row of one), stacked."""
    return np.concatenate([np.atleast_1d(np.asarray(a, np.float64)).reshape(-1, np.atleast_1d(a).shape[-1]) for a in arrays])


def compare(reference: Sequence[np.ndarray], actual: Sequence[np.ndarray]) -> dict[str, float]:
    """Metrics of ``actual`` vs ``reference``: one array per sample (first output of each run).

    top-1 agreement is the share of samples (rows, for batched outputs) whose argmax over the
    last axis agrees; it is only meaningful for classifier-like outputs. NaN or Inf in ``actual``
    is a mismatch, never a pass: SQNR is then -:data:`SQNR_CAP_DB`, cosine 0, the rows holding
    them disagree, ``nonfinite`` counts them and :func:`within` names them. A non-finite
    ``reference`` is a ValueError (:func:`check_finite` catches it earlier).
    """
    if len(reference) != len(actual):
        raise ValueError(f"{len(reference)} reference outputs but {len(actual)} actual ones")
    for r, a in zip(reference, actual):
        if np.shape(r) != np.shape(a) and not np.size(r) == np.size(a) == 1:  # a 0-d output is its (1,) reference
            raise ValueError(f"output shape {np.shape(a)} differs from the reference {np.shape(r)}")
    ref = np.concatenate([np.asarray(r, np.float64).ravel() for r in reference]) if reference else np.zeros(0)
    act = np.concatenate([np.asarray(a, np.float64).ravel() for a in actual]) if actual else np.zeros(0)
    if not np.isfinite(ref).all():
        raise ValueError(f"the reference outputs hold {int((~np.isfinite(ref)).sum())} NaN/Inf values; nothing to compare against")
    bad = ~np.isfinite(act)
    nonfinite = int(bad.sum())
    err = np.where(bad, 0.0, act - ref)
    noise = float(np.sum(err**2))
    signal = float(np.sum(ref**2))
    if nonfinite:
        sqnr = -SQNR_CAP_DB
    else:
        sqnr = SQNR_CAP_DB if noise == 0.0 else float(np.clip(10.0 * np.log10(max(signal, 1e-300) / noise), -SQNR_CAP_DB, SQNR_CAP_DB))
    denom = float(np.linalg.norm(ref) * np.linalg.norm(act)) if not nonfinite else 0.0
    cosine = 0.0 if nonfinite else (1.0 if denom == 0.0 else float(np.dot(ref, act) / denom))
    cosine = cosine if np.isfinite(cosine) else 0.0  # norms past float64's range
    ref_rows, act_rows = _rows(reference), _rows(actual)
    agree = (ref_rows.argmax(-1) == act_rows.argmax(-1)) & np.isfinite(act_rows).all(-1)
    out = {
        "max_abs": float(np.max(np.abs(err))) if err.size else 0.0,
        "mean_abs": float(np.mean(np.abs(err))) if err.size else 0.0,
        "sqnr_db": float(sqnr),
        "cosine": cosine,
        "top1_agreement": float(np.mean(agree)),
        "output_scale": float(np.max(np.abs(ref))) if ref.size else 0.0,
    }
    if nonfinite:
        out["nonfinite"] = nonfinite
    return out


def compare_multi(ref_sets: Sequence[Sequence[np.ndarray]], out_sets: Sequence[Sequence[np.ndarray]]) -> dict:
    """Metrics over every output of a multi-output model: one list of output arrays per sample.

    Returns the judged figures, each the worst over the outputs (lowest SQNR, cosine and top-1
    agreement, largest max abs error and scale; mean abs error over all elements), so a model
    passes only when every output does, plus ``outputs`` (their number) and, for two or more,
    ``per_output``: :func:`compare` of each output, in order. With one output it is :func:`compare`.
    ValueError when the samples or their outputs do not line up.
    """
    if len(ref_sets) != len(out_sets):
        raise ValueError(f"{len(ref_sets)} reference samples but {len(out_sets)} actual ones")
    counts = {len(s) for s in ref_sets} | {len(s) for s in out_sets}
    if len(counts) > 1:
        raise ValueError(f"the artifact and the reference return different numbers of outputs ({', '.join(map(str, sorted(counts)))})")
    n = counts.pop() if counts else 0
    if n == 0:
        raise ValueError("no outputs to compare")
    per = [compare([r[j] for r in ref_sets], [o[j] for o in out_sets]) for j in range(n)]
    if n == 1:
        return {**per[0], "outputs": 1}
    sizes = [sum(np.size(r[j]) for r in ref_sets) for j in range(n)]
    pooled: dict = {
        "max_abs": max(m["max_abs"] for m in per),
        "mean_abs": float(sum(m["mean_abs"] * w for m, w in zip(per, sizes)) / max(sum(sizes), 1)),
        "sqnr_db": min(m["sqnr_db"] for m in per),
        "cosine": min(m["cosine"] for m in per),
        "top1_agreement": min(m["top1_agreement"] for m in per),
        "output_scale": max(m["output_scale"] for m in per),
    }
    nonfinite = sum(m.get("nonfinite", 0) for m in per)
    if nonfinite:
        pooled["nonfinite"] = nonfinite
    return {**pooled, "outputs": n, "per_output": per}


def check_finite(outputs: Sequence, what: str, fix: str = "") -> None:
    """BadInput naming ``what`` when the per-sample ``outputs`` (arrays, or lists of arrays) hold NaN or Inf.

    For the eager reference: a model that computes NaN on the checked inputs leaves nothing to
    compare an artifact against, so the compile stops there with one line instead of a report of
    meaningless figures. (Imports edgest lazily: this module also runs in device bundles.)
    """
    from edgest.errors import BadInput
    from edgest.finite import samples_problem

    problem = samples_problem(outputs)
    if problem:
        raise BadInput(f"{what} hold {problem}; " + (fix or "check the weights (retrain or re-export them) and the "
                       "model's numerics (log or sqrt of negatives, division by zero, overflow)"))


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
    if metrics.get("nonfinite"):  # its SQNR is the floor, not a measurement: say why instead
        broken.append(f"the artifact's outputs hold {metrics['nonfinite']} NaN/Inf values")
    elif metrics["sqnr_db"] < limits.get("min_sqnr_db", -np.inf):
        broken.append(f"SQNR {metrics['sqnr_db']:.1f} dB < {limits['min_sqnr_db']} dB")
    if metrics["top1_agreement"] < limits.get("min_top1_agreement", -np.inf):
        broken.append(f"top-1 agreement {metrics['top1_agreement']:.1%} < {limits['min_top1_agreement']:.0%}")
    drop = metrics.get("task_top1_drop_pts")
    if drop is not None and drop > limits.get("max_task_top1_drop_pts", np.inf):
        broken.append(f"task top-1 drop {drop:.1f} pt > {limits['max_task_top1_drop_pts']:g} pt")
    return broken
