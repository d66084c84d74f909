#!/usr/bin/env python3
"""Run an edgest bundle on a device with only the target's runtime and NumPy installed.

Checks accuracy against the bundled expected outputs and measures latency with edgest's own
protocol (the NumPy-only modules in ./edgest_check), then writes device-report.json for
``edgest report merge``. The runtime itself is driven by ./edgest_device_runner.py, the
target's own device runner (its ``load(path, threads)`` returns an object with ``threads``
and ``run(inputs) -> outputs``), so this script names no runtime. No torch and no edgest
needed, unless the runtime itself needs torch.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from edgest_check.accuracy import compare, within  # noqa: E402
from edgest_check.latency import LatencyConfig, measure  # noqa: E402


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cpu() -> str:
    try:
        if sys.platform == "darwin":
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True).stdout.strip()
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _first_line(exc: BaseException) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:300]


def _load(manifest: dict[str, Any], artifact: Path, threads: int) -> Any:
    """The target's runner for ``artifact``; exits with one line when the runtime is missing or refuses."""
    runtime = manifest["runtime"]
    try:
        device = importlib.import_module(Path(manifest["runner"]).stem)
        return device.load(str(artifact), threads)
    except ImportError as exc:
        install = "; ".join("python -m pip install " + " ".join(a) for a in manifest.get("runtime_install", []))
        raise SystemExit(f"error: the {runtime} runtime is not installed here ({exc}); install it with: {install}") from None
    except Exception as exc:  # noqa: BLE001 - any runtime's refusal, as one line
        raise SystemExit(f"error: cannot load {artifact.name} with {runtime}: {_first_line(exc)}") from None


def _first_output(runner: Any, x: np.ndarray, artifact: Path) -> np.ndarray:
    try:
        return np.asarray(runner.run([x])[0])
    except Exception as exc:  # noqa: BLE001 - any runtime's failure, as one line
        raise SystemExit(f"error: running {artifact.name} failed: {_first_line(exc)}") from None


def _latency(runner: Any, x: np.ndarray, args: argparse.Namespace, cold_ms: float) -> dict[str, Any]:
    """edgest's latency protocol on one input (plus sustained rounds), or why timing means nothing here."""
    threads = getattr(runner, "threads", args.threads)
    reason = getattr(runner, "timing_unavailable", "")
    if reason:
        return {"status": "not_run", "reason": str(reason), "cold_load_ms": cold_ms, "threads": threads}
    cfg = LatencyConfig(warmup=args.warmup, min_runs=args.runs, min_seconds=args.seconds)
    rounds = [measure(lambda: runner.run([x]), cfg)]
    for _ in range(args.sustained):
        time.sleep(args.cooldown)
        rounds.append(measure(lambda: runner.run([x]), cfg))
    return {**rounds[0], "cold_load_ms": cold_ms, "threads": threads,
            "sustained_p50_ms": [r["p50_ms"] for r in rounds[1:]], "cooldown_s": args.cooldown if args.sustained else 0}


def _arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--sustained", type=int, default=0, help="extra measurement rounds (phones throttle)")
    ap.add_argument("--cooldown", type=float, default=10.0, help="seconds between sustained rounds")
    ap.add_argument("--device-name", default=platform.node() or "device")
    ap.add_argument("--out", type=Path, default=HERE / "device-report.json")
    return ap.parse_args()


def _bundle() -> tuple[dict, list, list]:
    """The manifest and the input/expected arrays; one SystemExit line when the bundle is damaged or incomplete."""
    try:
        manifest = json.loads((HERE / "manifest.json").read_text())
        count = manifest["samples"]
        inputs = [np.load(HERE / "data" / f"input_{i:02d}.npy") for i in range(count)]
        expected = [np.load(HERE / "data" / f"expected_{i:02d}.npy") for i in range(count)]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise SystemExit(f"error: the bundle is damaged or incomplete ({type(exc).__name__}: {exc}); copy it again "
                         "from the host (edgest bundle RUN_DIR --out BUNDLE)") from None
    return manifest, inputs, expected


def main() -> int:
    args = _arguments()
    try:
        LatencyConfig(warmup=args.warmup, min_runs=args.runs, min_seconds=args.seconds)
    except ValueError as exc:  # --runs -1, --seconds nan: one line, before the artifact is loaded
        raise SystemExit(f"error: {exc}; see --help") from None
    manifest, inputs, expected = _bundle()
    artifact = HERE / manifest["artifact"]
    if artifact.is_file() and _sha256(artifact) != manifest["artifact_sha256"]:
        raise SystemExit(f"error: {artifact.name} does not match the bundle's sha256 (a corrupted copy?); copy the bundle again")
    t0 = time.perf_counter()
    runner = _load(manifest, artifact, args.threads)
    cold_ms = (time.perf_counter() - t0) * 1e3
    outputs = [_first_output(runner, x, artifact) for x in inputs]
    metrics = compare(expected, outputs)
    broken = within(metrics, manifest["limits"])
    latency = _latency(runner, inputs[0], args, cold_ms)
    runtime = manifest["runtime"]
    device = {"name": args.device_name, "os": platform.platform(), "machine": platform.machine(), "cpu": _cpu(),
              "python": platform.python_version(), "runtime": runtime, "runtime_version": _version(runtime)}
    if getattr(runner, "label", ""):
        device["runner"] = str(runner.label)
    report = {
        "kind": "edgest-device-report", "bundle_version": manifest["bundle_version"],
        "model": manifest["model"], "target": manifest["target"], "precision": manifest["precision"],
        "artifact_sha256": manifest["artifact_sha256"], "device": device,
        "accuracy": {**metrics, "samples": len(inputs), "status": "failed" if broken else "passed", "limits": manifest["limits"], "reason": "; ".join(broken)},
        "latency": latency, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    timing = (f"p50 {latency['p50_ms']:.2f} ms, p90 {latency['p90_ms']:.2f} ms" if "p50_ms" in latency
              else f"latency not run: {latency['reason']}")
    print(f"{manifest['model']} on {args.device_name} ({runtime}): accuracy {report['accuracy']['status']} "
          f"(SQNR {metrics['sqnr_db']:.1f} dB), {timing} -> {args.out}")
    return 0 if not broken else 1


if __name__ == "__main__":
    sys.exit(main())
