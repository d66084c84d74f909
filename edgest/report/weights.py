"""Weights provenance: which weights a model ran with, recorded in every report and stated in one line.

A report's figures mean little without it: on random initial weights, accuracy against eager
still says whether the artifact computes what PyTorch computes, but task accuracy is chance
level, and some models (EMOv2, spiking LMUFormer) give the same output for every input.
The record is plain data (``Report.weights`` and each bench cell's ``weights``):

* ``{"kind": "file", "path": ..., "sha256": ...}``: a state_dict the user gave (``--weights``);
* ``{"kind": "stand-in", "path": ..., "sha256": ...}``: responsive stand-ins, not trained
  (:mod:`edgest.testing.weights`);
* ``{"kind": "random-init"}``: the model's own initialisation;
* ``{}``: not recorded (reports written before schema 1.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

KINDS = ("file", "stand-in", "random-init")


def weights_record(path: str | Path | None, kind: str | None = None) -> dict[str, Any]:
    """The provenance of ``path`` (None: random init); ``kind`` overrides ``file`` (e.g. ``stand-in``)."""
    if path is None:
        return {"kind": "random-init"}
    from edgest.fsio import sha256_of

    kind = kind or "file"
    if kind not in KINDS:
        raise ValueError(f"unknown weights kind {kind!r}; one of {', '.join(KINDS)}")
    return {"kind": kind, "path": str(path), "sha256": sha256_of(Path(path))}


def weights_line(record: dict[str, Any] | None) -> str:
    """One sentence for a report: where the weights came from, with the file's sha256."""
    rec = record or {}
    kind = rec.get("kind")
    if kind == "random-init":
        return ("random initialisation (no weights file): accuracy compares the artifact with eager PyTorch on the "
                "same untrained weights; task accuracy would be chance level (pass trained weights with --weights)")
    if kind in ("file", "stand-in"):
        from edgest.weights.provenance import summary  # the format and what was renamed, resized, left at init

        sha = rec.get("sha256") or ""
        what = "stand-in weights, not trained" if kind == "stand-in" else "loaded from"
        line = f"{what} `{rec.get('path', '?')}` (sha256 `{sha[:16]}…`)" if sha else f"{what} `{rec.get('path', '?')}`"
        return line + (f"; {summary(rec)}" if summary(rec) else "")
    return "not recorded (report written by an edgest before schema 1.1)"


def short_label(record: dict[str, Any] | None) -> str:
    """A table-sized label: ``random init``, ``w.pt (ab12cd34)``, ``stand-in w.pt (…)`` or ``not recorded``."""
    rec = record or {}
    if rec.get("kind") == "random-init":
        return "random init"
    if rec.get("kind") in ("file", "stand-in"):
        name = Path(str(rec.get("path", "?"))).name
        sha = (rec.get("sha256") or "")[:8]
        return ("stand-in " if rec["kind"] == "stand-in" else "") + name + (f" (sha256 {sha}…)" if sha else "")
    return "not recorded"
