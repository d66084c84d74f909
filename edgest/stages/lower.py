"""Lower stage: the target writes its artifact; the artifact-stage quantizer runs; the Artifact record is made."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgest.capture import describe_failure
from edgest.errors import EdgestError, Unsupported
from edgest.fsio import sha256_of
from edgest.records import Artifact, PassRecord

if TYPE_CHECKING:
    from edgest.plan import Plan
    from edgest.stages.build import Built
    from edgest.stages.transform import Transformed
    from edgest.target import Lowered


def lower(plan: Plan, done: Transformed, folder: Path) -> Lowered:
    """Lower the transformed program into ``folder`` with the plan's target."""
    from edgest.target import Lowered

    try:
        lowered = plan.target.lower(done.program, done.example, folder)
    except EdgestError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise Unsupported(f"target '{plan.target.name}' cannot lower model '{plan.spec.name}': {describe_failure(exc)}") from exc
    if done.quantization:
        lowered = Lowered(lowered.path, {**lowered.details, "quantization": done.quantization})
    return lowered


def quantize_artifact(plan: Plan, done: Transformed, lowered: Lowered, built: Built) -> tuple[Lowered, tuple[PassRecord, ...]]:
    """Run the artifact-stage quantizer the passes handed over, if any; return the artifact and updated records."""
    from edgest.quantize.stage import quantize_artifact as run_step

    if done.artifact_step is None:
        return lowered, done.records
    i = done.artifact_step_record
    lowered, record = run_step(plan.target, lowered, done.artifact_step, done.records[i], built.inputs)
    return lowered, (*done.records[:i], record, *done.records[i + 1:])


def size_of(path: Path) -> int:
    """Bytes in a file, or in every file under a package folder."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def artifact_record(plan: Plan, lowered: Lowered, records: tuple[PassRecord, ...], compile_seconds: float) -> Artifact:
    """The Artifact record: file, format, size, sha256 (of the tree for package folders), passes, toolchain."""
    cls = type(plan.target)
    return Artifact(
        model=plan.spec.name, target=cls.name, path=lowered.path.name, format=cls.artifact_format,
        size_bytes=size_of(lowered.path), sha256=sha256_of(lowered.path), passes=tuple(r.name for r in records),
        toolchain=cls.toolchain_versions(), details=lowered.details, compile_seconds=round(compile_seconds, 3),
    )

