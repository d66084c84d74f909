"""``edgest bundle RUN_DIR``: copy the artifact, seeded inputs, expected outputs and a runner script.

A ``--streaming`` run's bundle holds its seeded sequences as step inputs, the parallel model's
per-step outputs on them and the initial states; the script streams them through the step
artifact with the state fed back (:mod:`edgest.streaming.stepping`, copied in too).

The bundle's ``run_on_device.py`` needs only NumPy and the target's runtime (no torch, no
edgest): it imports edgest's NumPy-only accuracy and latency modules, which are copied next
to it, so device and host figures come from the same code. Everything runtime-specific comes
from the target through its contract: ``Target.device_runner`` (a module copied in as
``edgest_device_runner.py``) and ``Target.runtime_requirements`` (the pip lines in the
manifest and README), so a plugin's target bundles exactly as a first-party one does.
"""

from __future__ import annotations

import importlib.util
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgest.checks import accuracy, latency
from edgest.errors import BadInput, TargetUnavailable, UnknownName, Unsupported
from edgest.fsio import dumps_json
from edgest.outdir import staged_output
from edgest.report.writers import read_run
from edgest.streaming import spec as stream_spec
from edgest.streaming import stepping

if TYPE_CHECKING:
    from edgest.plugins import Registry
    from edgest.target import Target

_HERE = Path(__file__).parent
#: the name the target's device runner module gets in a bundle, beside run_on_device.py
RUNNER_FILE = "edgest_device_runner.py"

def runtime_install(requirements: Sequence[Sequence[str]], toolchain: dict[str, str]) -> list[list[str]]:
    """The pip argument lists ``requirements``, each ``dist=={dist}`` pinned to its version in ``toolchain`` where known."""
    out = []
    for args in requirements or (("numpy",),):
        pinned = []
        for arg in args:
            dist, templated, _ = arg.partition("=={")
            if not templated:
                pinned.append(arg)
                continue
            version = toolchain.get(dist, "").partition("+")[0]  # "2.13.0+cpu" is not on PyPI
            pinned.append(f"{dist}=={version}" if version and version != "not installed" else dist)
        out.append(pinned)
    return out


def runtime_name(requirements: Sequence[Sequence[str]], toolchain: Sequence[str]) -> str:
    """The distribution a device report names as the runtime: the first pinned requirement among the
    target's ``toolchain`` distributions, else the first pinned one ("" when nothing is pinned)."""
    pinned = [arg.partition("=={")[0] for args in requirements for arg in args if "=={" in arg]
    return next((d for d in pinned if d in toolchain), pinned[0] if pinned else "")


def device_runner(target: str, registry: Registry | None = None) -> tuple[type[Target], Path]:
    """The class of ``target`` and the source file of its device runner; one-line errors when it has none."""
    from edgest.plugins import get_registry

    try:
        cls = (registry or get_registry()).target(target)
    except UnknownName:
        raise TargetUnavailable(f"the run was compiled for target '{target}', which no installed plugin provides; "
                                "install that target's plugin to bundle the run") from None
    must = ("Target.device_runner (a module needing only NumPy and the runtime, with load(path, threads)) "
            "and Target.runtime_requirements")
    if not cls.device_runner:
        raise Unsupported(f"target '{target}' cannot make device bundles: its plugin must provide {must}")
    try:
        spec = importlib.util.find_spec(cls.device_runner)
    except (ImportError, ValueError):
        spec = None
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    if origin is None or origin.suffix != ".py" or spec.submodule_search_locations is not None:
        raise Unsupported(f"target '{target}' names device_runner '{cls.device_runner}', which is not a one-file "
                          f"Python module here; its plugin must provide {must}")
    return cls, origin


def artifact_files(artifact: Path, details: dict[str, Any]) -> list[Path]:
    """The artifact and, for a file artifact, the companions its details list in ``files`` (e.g. OpenVINO's ``.bin``)."""
    if artifact.is_dir():
        return [artifact]
    names = [n for n in details.get("files", []) if isinstance(n, str) and Path(n).name == n and n != artifact.name]
    return [artifact, *(artifact.parent / n for n in names if (artifact.parent / n).is_file())]


def _write_manifest(stage: Path, report: Any, target: Any, artifact: Path, data: dict[str, Any]) -> None:
    """The bundle's manifest.json (what run_on_device.py reads) and README.txt (what a person reads)."""
    stream = report.check("streaming") if report.streaming else None
    judged = stream or report.check("accuracy")
    install = runtime_install(target.runtime_requirements, report.artifact.toolchain)
    runtime = runtime_name(target.runtime_requirements, target.toolchain) or report.target
    lat = (report.check("latency").metrics or {}) if report.check("latency") else {}
    host = {"p50_ms": lat.get("p50_ms"), "toolchain": report.artifact.toolchain}
    if stream is not None:
        host.update({k: (stream.metrics or {}).get(k) for k in ("step_p50_ms", "real_time_factor")})
    manifest = {
        "bundle_version": 1, "model": report.model.name, "target": report.target, "precision": report.precision,
        "format": report.artifact.format, "artifact": artifact.name, "artifact_sha256": report.artifact.sha256,
        "runtime": runtime, "runner": RUNNER_FILE, "runtime_install": install, **data,
        "limits": judged.limits if judged else accuracy.LIMITS[report.precision], "host": host,
    }
    what = ("It streams whole sequences through the step artifact, feeding its state back, checks\n"
            "every step against the expected outputs, measures per-step latency and the real-time\n"
            "factor, and writes" if stream is not None or report.streaming else
            "It checks accuracy against the expected outputs, measures latency, and writes")
    (stage / "manifest.json").write_text(dumps_json(manifest))  # the whole bundle appears at once (staged)
    (stage / "README.txt").write_text(
        f"edgest device bundle: {report.model.name} for {report.target} ({report.precision})"
        + (" as a step (streaming) module; its interface is in streaming.json" if report.streaming else "") + ".\n"
        "Install only the runtime and NumPy on the device:\n"
        + "".join(f"    python -m pip install {' '.join(args)}\n" for args in install)
        + "then:\n"
        "    python run_on_device.py [--threads N] [--sustained ROUNDS --cooldown S]\n"
        f"{what}\n"
        "device-report.json; bring that file back and run\n"
        "    edgest report merge RUN_DIR device-report.json\n"
    )


def _whole_input_data(run_dir: Path, report: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A whole-input compile's ``data/`` arrays (seeded inputs, eager's outputs) and its manifest entries."""
    if not (run_dir / "reference.npz").is_file():
        raise BadInput(f"run '{run_dir}' lacks its reference.npz; recompile with this edgest version")
    acc = report.check("accuracy")
    seed = int(acc.metrics.get("seed", 0)) if acc and acc.metrics else 0
    try:
        with np.load(run_dir / "reference.npz") as ref:
            expected = [ref[f"s{i}"] for i in range(len(ref.files))]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # a truncated or foreign file
        raise BadInput(f"run '{run_dir}' has a damaged reference.npz ({type(exc).__name__}); compile the run again") from None
    inputs = accuracy.seeded_inputs([report.model.input.shape], len(expected), seed)
    files = {f"{kind}_{i:02d}": a for i, (xs, y) in enumerate(zip(inputs, expected))
             for kind, a in (("input", xs[0]), ("expected", y))}
    return files, {"input_shape": list(report.model.input.shape), "samples": len(expected), "seed": seed}


def _streaming_data(run_dir: Path, report: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A ``--streaming`` compile's ``data/`` arrays (per sequence its step inputs and the parallel model's per-step
    outputs; the initial states) and its manifest entries (what run_on_device.py streams)."""
    path = run_dir / stream_spec.SEQUENCES_FILE
    if not path.is_file():
        raise BadInput(f"run '{run_dir}' is a --streaming compile without its {stream_spec.SEQUENCES_FILE}; "
                       "compile it again with this edgest version to bundle it")
    try:
        seqs, refs, init = stream_spec.read_sequences(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise BadInput(f"run '{run_dir}' has a damaged {path.name} ({type(exc).__name__}); compile the run again") from None
    iface = report.streaming
    files = {f"{kind}_{i:02d}": a for i, (q, r) in enumerate(zip(seqs, refs)) for kind, a in (("steps", q), ("expected", r))}
    files.update({f"state_{j:02d}": a for j, a in enumerate(init)})
    stream = {"sequences": len(seqs), "steps": len(seqs[0]), "states": len(init),
              "state_names": [t["name"] for t in iface.get("inputs", [])[1:]],
              "step_seconds": float(iface.get("step_seconds", 0.0)), "interface": stream_spec.FILE_NAME}
    return files, {"input_shape": list(seqs[0].shape[1:]), "samples": len(seqs), "streaming": stream}


def build_bundle(run_dir: Path, out: Path, force: bool = False, registry: Registry | None = None) -> Path:
    """Write a device bundle for the compile run in ``run_dir`` to ``out``; returns ``out``.

    The run's target (looked up in ``registry``, by default the installed plugins') provides the
    device runner and the runtime's install lines. A ``--streaming`` run's bundle streams its seeded
    sequences through the step artifact with the state fed back (:mod:`edgest.streaming.stepping`).
    """
    run_dir = Path(run_dir)
    real_run, real_out = run_dir.resolve(), Path(out).resolve()
    if real_out == real_run or real_out in real_run.parents:
        raise BadInput(f"bundle folder '{out}' would replace the run '{run_dir}' it is built from; pass --out (out=) a folder outside the run")
    report = read_run(run_dir)  # a sound report.json and the very artifact it describes (sha256)
    artifact = run_dir / report.artifact.path
    files, entries = (_streaming_data if report.streaming else _whole_input_data)(run_dir, report)
    target, runner_source = device_runner(report.target, registry)
    with staged_output(out, force=force, kind="bundle") as stage:
        for part in artifact_files(artifact, report.artifact.details):
            if part.is_dir():
                shutil.copytree(part, stage / part.name)
            else:
                shutil.copy2(part, stage / part.name)
        (stage / "data").mkdir()
        for name, arr in files.items():
            np.save(stage / "data" / f"{name}.npy", arr)
        _copy_checks(stage / "edgest_check", streaming=bool(report.streaming))
        if report.streaming and (run_dir / stream_spec.FILE_NAME).is_file():  # the interface, for the app developer
            shutil.copy2(run_dir / stream_spec.FILE_NAME, stage / stream_spec.FILE_NAME)
        shutil.copy2(_HERE / "run_on_device.py", stage / "run_on_device.py")
        shutil.copy2(runner_source, stage / RUNNER_FILE)
        _write_manifest(stage, report, target, artifact, entries)
    return Path(out)


def _copy_checks(folder: Path, streaming: bool) -> None:
    """edgest's NumPy-only check modules, copied as the package ``edgest_check`` (plus the stepping for streaming)."""
    folder.mkdir()
    shutil.copy2(Path(accuracy.__file__), folder / "accuracy.py")
    shutil.copy2(Path(latency.__file__), folder / "latency.py")
    if streaming:
        shutil.copy2(Path(stepping.__file__), folder / "stepping.py")
    (folder / "__init__.py").write_text('"""NumPy-only copies of edgest.checks.accuracy and edgest.checks.latency'
                                        + (' and edgest.streaming.stepping' if streaming else '') + '."""\n')
