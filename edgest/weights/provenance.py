"""What a weights file gave the model: the provenance record a report keeps.

A released checkpoint rarely loads one-to-one: keys are renamed to edgest's module names,
position embeddings resized, a patch embedding inflated, an ImageNet classifier skipped, a
head or temporal encoder left at its initialisation, pickled training objects dropped. The
record lists each, with counts, plus the detected format and the file's sha256, so a report
says exactly which numbers came from the file. It extends :func:`edgest.report.weights.weights_record`
(``kind``, ``path``, ``sha256``), which readers of older reports already understand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WeightsRecord:
    """One load: the format and container, and per category the keys (model names) with reasons."""

    path: str
    sha256: str
    format: str
    container: str
    source: str = ""
    loaded: tuple[str, ...] = ()
    renamed: dict[str, str] = field(default_factory=dict)
    resized: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    left_at_init: dict[str, str] = field(default_factory=dict)
    dropped_objects: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """How many tensors were loaded, renamed, resized, skipped and left at init; pickled objects dropped."""
        return {"loaded": len(self.loaded), "renamed": len(self.renamed), "resized": len(self.resized),
                "skipped": len(self.skipped), "left_at_init": len(self.left_at_init),
                "dropped_objects": sum(self.dropped_objects.values())}

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (``kind: file``): counts, then every renamed, resized, skipped and left-at-init key."""
        return {
            "kind": "file", "path": self.path, "sha256": self.sha256, "format": self.format,
            "container": self.container, "source": self.source, "counts": self.counts(),
            "renamed": dict(self.renamed), "resized": dict(self.resized), "skipped": dict(self.skipped),
            "left_at_init": dict(self.left_at_init), "dropped_objects": dict(self.dropped_objects),
            "notes": list(self.notes),
        }


def summary(record: dict[str, Any] | None) -> str:
    """One clause for report.md: the format, the counts that are not zero, and the notes; ``""`` if not recorded."""
    rec = record or {}
    if not rec.get("format"):
        return ""
    counts = rec.get("counts") or {}
    parts = [f"{counts[k]} {k.replace('_', ' ')}" for k in ("loaded", "renamed", "resized", "skipped", "left_at_init")
             if counts.get(k)]
    if counts.get("dropped_objects"):
        parts.append(f"{counts['dropped_objects']} pickled non-tensor objects dropped")
    where = f" ({rec['source']})" if rec.get("source") else ""
    text = f"format {rec['format']}{where}: " + (", ".join(parts) or "nothing loaded")
    notes = rec.get("notes") or []
    return text + ("; " + "; ".join(notes) if notes else "")
