"""``edgest bundle RUN_DIR``: copy the artifact, seeded inputs, expected outputs and a runner script.

The bundle's ``run_on_device.py`` needs only NumPy and the target's runtime (no torch, no
edgest): it imports edgest's NumPy-only accuracy and latency modules, which are copied next
to it, so device and host figures come from the same code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from edgest.checks import accuracy, latency
from edgest.errors import BadInput
from edgest.outdir import staged_output
from edgest.report.writers import read_json

_HERE = Path(__file__).parent

#: artifact format → the pip commands (argument lists, run in order) that install its runtime and NumPy
#: alone on a device. ``{dist}`` is the version of ``dist`` that built the artifact (from the report), so
#: the device runs the runtime the artifact was made for. ExecuTorch's Python runtime links libtorch and
#: imports a few modules of its exporter, hence torch and three small packages, without the rest of
#: executorch's (exporter-side) dependencies.
RUNTIME_INSTALL: dict[str, list[list[str]]] = {
    "onnx": [["numpy", "onnxruntime=={onnxruntime}"]],
    "pte": [["numpy", "torch=={torch}", "ruamel.yaml", "flatbuffers", "tabulate"], ["--no-deps", "executorch=={executorch}"]],
    "so": [["numpy", "apache-tvm=={apache-tvm}", "apache-tvm-ffi=={apache-tvm-ffi}"]],
    "mlpackage": [["numpy", "coremltools=={coremltools}"]],
    "xml": [["numpy", "openvino=={openvino}"]],
    "plan": [["numpy", "tensorrt=={tensorrt}", "torch"]],
}


def runtime_install(fmt: str, toolchain: dict[str, str]) -> list[list[str]]:
    """The pip argument lists that install ``fmt``'s runtime, pinned to the versions in ``toolchain`` where known."""
    out = []
    for args in RUNTIME_INSTALL.get(fmt, [["numpy"]]):
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


def build_bundle(run_dir: Path, out: Path, force: bool = False) -> Path:
    """Write a device bundle for the compile run in ``run_dir`` to ``out``; returns ``out``."""
    run_dir = Path(run_dir)
    if not (run_dir / "report.json").is_file():
        raise BadInput(f"'{run_dir}' is not an edgest run folder (no report.json); pass the --out folder of edgest compile")
    report = read_json(run_dir / "report.json")
    if report.artifact is None:
        raise BadInput(f"run '{run_dir}' has no artifact (status {report.status}); compile it first")
    artifact = run_dir / report.artifact.path
    if not (run_dir / "reference.npz").is_file() or not artifact.exists():
        raise BadInput(f"run '{run_dir}' lacks its artifact or reference.npz; recompile with this edgest version")
    acc = report.check("accuracy")
    seed = int(acc.metrics.get("seed", 0)) if acc and acc.metrics else 0
    with np.load(run_dir / "reference.npz") as ref:
        expected = [ref[f"s{i}"] for i in range(len(ref.files))]
    inputs = accuracy.seeded_inputs([report.model.input.shape], len(expected), seed)
    with staged_output(out, force=force) as stage:
        if artifact.is_dir():
            shutil.copytree(artifact, stage / artifact.name)
        else:
            shutil.copy2(artifact, stage / artifact.name)
        data = stage / "data"
        data.mkdir()
        for i, (xs, y) in enumerate(zip(inputs, expected)):
            np.save(data / f"input_{i:02d}.npy", xs[0])
            np.save(data / f"expected_{i:02d}.npy", y)
        checks = stage / "edgest_check"
        checks.mkdir()
        shutil.copy2(Path(accuracy.__file__), checks / "accuracy.py")
        shutil.copy2(Path(latency.__file__), checks / "latency.py")
        (checks / "__init__.py").write_text('"""NumPy-only copies of edgest.checks.accuracy and edgest.checks.latency."""\n')
        shutil.copy2(_HERE / "run_on_device.py", stage / "run_on_device.py")
        install = runtime_install(report.artifact.format, report.artifact.toolchain)
        manifest = {
            "bundle_version": 1, "model": report.model.name, "target": report.target, "precision": report.precision,
            "format": report.artifact.format, "artifact": artifact.name, "artifact_sha256": report.artifact.sha256,
            "runtime_install": install,
            "input_shape": list(report.model.input.shape), "samples": len(expected), "seed": seed,
            "limits": acc.limits if acc else accuracy.LIMITS[report.precision],
            "host": {"p50_ms": (report.check("latency").metrics or {}).get("p50_ms") if report.check("latency") else None,
                     "toolchain": report.artifact.toolchain},
        }
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (stage / "README.txt").write_text(
            f"edgest device bundle: {report.model.name} for {report.target} ({report.precision}).\n"
            "Install only the runtime and NumPy on the device:\n"
            + "".join(f"    python -m pip install {' '.join(args)}\n" for args in install)
            + "then:\n"
            "    python run_on_device.py [--threads N] [--sustained ROUNDS --cooldown S]\n"
            "It checks accuracy against the expected outputs, measures latency, and writes\n"
            "device-report.json; bring that file back and run\n"
            "    edgest report merge RUN_DIR device-report.json\n"
        )
    return Path(out)
