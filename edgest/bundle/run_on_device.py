#!/usr/bin/env python3
"""Run an edgest bundle on a device with only the target's runtime and NumPy installed.

Checks accuracy against the bundled expected outputs and measures latency with edgest's own
protocol (the NumPy-only modules in ./edgest_check), then writes device-report.json for
``edgest report merge``. The runtime itself is driven by ./edgest_device_runner.py, the
target's own device runner (its ``load(path, threads)`` returns an object with ``threads``
and ``run(inputs) -> outputs``), so this script names no runtime. No torch and no edgest
needed, unless the runtime itself needs torch.

A streaming bundle (``streaming`` in manifest.json: a ``--streaming`` compile's step module)
streams whole sequences instead: from the initial states, one call per step with the state
outputs fed back as the next step's state inputs, each step's output compared with the
parallel model's; latency is per step of one continuous stream, with the real-time factor.

Exit status, as edgest's: 0 the accuracy check passed; 1 it failed, or the run could not happen here
(the runtime missing or refusing, a damaged bundle); 2 a bad argument (before anything is loaded).
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
from collections.abc import Callable
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


def _latency(runner: Any, time_once: Callable[[LatencyConfig], dict[str, Any]], args: argparse.Namespace,
             cold_ms: float) -> dict[str, Any]:
    """edgest's latency protocol (``time_once``, plus sustained rounds), or why timing means nothing here."""
    threads = getattr(runner, "threads", args.threads)
    reason = getattr(runner, "timing_unavailable", "")
    if reason:
        return {"status": "not_run", "reason": str(reason), "cold_load_ms": cold_ms, "threads": threads}
    cfg = LatencyConfig(warmup=args.warmup, min_runs=args.runs, min_seconds=args.seconds)
    rounds = [time_once(cfg)]
    for _ in range(args.sustained):
        time.sleep(args.cooldown)
        rounds.append(time_once(cfg))
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


def _check_arguments(args: argparse.Namespace) -> None:
    """One SystemExit line for a value the run cannot use, before the artifact is loaded (module docstring)."""
    try:
        LatencyConfig(warmup=args.warmup, min_runs=args.runs, min_seconds=args.seconds)
    except ValueError as exc:  # --runs -1, --seconds nan
        raise _usage(f"error: {exc}; see --help") from None
    for bad, what in ((args.threads < 1, "--threads must be 1 or more"),
                      (args.sustained < 0, "--sustained must be 0 or more"),
                      (not 0 <= args.cooldown < float("inf"), "--cooldown must be a finite number of seconds, 0 or more")):
        if bad:
            raise _usage(f"error: {what}; see --help")
    _check_out(args.out)


def _usage(line: str) -> SystemExit:
    """A bad argument: its one line on stderr and exit status 2, as argparse's own (``--threads abc``) and edgest's."""
    print(line, file=sys.stderr)
    return SystemExit(2)


def _check_out(out: Path) -> None:
    """--out must be a new file in an existing folder, or an earlier device report: never a bundle's own file."""
    if out.is_dir() or not out.parent.is_dir():
        where = "is a folder" if out.is_dir() else f"is in '{out.parent}', which is not a folder"
        raise _usage(f"error: --out '{out}' {where}; give a file path, e.g. --out device-report.json")
    if out.exists():
        try:
            kind = json.loads(out.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind != "edgest-device-report":
            raise _usage(f"error: --out '{out}' exists and is not a device report, which this script never "
                         "replaces; give a new file path")


def _write(out: Path, report: dict[str, Any]) -> None:
    """The report, whole or not at all (a temporary file beside it, renamed over it)."""
    part = out.with_name(f".{out.name}.partial")
    part.write_text(json.dumps(report, indent=2) + "\n")
    part.replace(out)


def _damaged(exc: BaseException) -> SystemExit:
    return SystemExit(f"error: the bundle is damaged or incomplete ({type(exc).__name__}: {exc}); copy it again "
                      "from the host (edgest bundle RUN_DIR --out BUNDLE)")


def _arrays(*names: str, count: int) -> list[list[np.ndarray]]:
    """``data/{name}_{i:02d}.npy`` for each name, ``i`` below ``count``."""
    try:
        return [[np.load(HERE / "data" / f"{name}_{i:02d}.npy") for i in range(count)] for name in names]
    except (OSError, ValueError, TypeError) as exc:
        raise _damaged(exc) from None


def _manifest() -> dict[str, Any]:
    """The bundle's manifest; one SystemExit line when the bundle is damaged or incomplete."""
    try:
        manifest = json.loads((HERE / "manifest.json").read_text())
        needed = [("samples", "artifact", "artifact_sha256", "limits", "runtime", "runner", "bundle_version")]
        needed += [("sequences", "states", "step_seconds")] if manifest.get("streaming") else []
        for keys, part in zip(needed, (manifest, manifest.get("streaming"))):
            missing = [k for k in keys if k not in part]
            if missing:
                raise KeyError(", ".join(missing))
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise _damaged(exc) from None
    return manifest


def _whole_input(runner: Any, manifest: dict[str, Any], args: argparse.Namespace, cold_ms: float,
                 artifact: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Accuracy on the seeded inputs against eager's outputs, and latency on the first input."""
    inputs, expected = _arrays("input", "expected", count=manifest["samples"])
    outputs = [_first_output(runner, x, artifact) for x in inputs]
    metrics = compare(expected, outputs)
    broken = within(metrics, manifest["limits"])
    acc = {**metrics, "samples": len(inputs), "status": "failed" if broken else "passed", "limits": manifest["limits"],
           "reason": "; ".join(broken)}
    return acc, _latency(runner, lambda cfg: measure(lambda: runner.run([inputs[0]]), cfg), args, cold_ms)


def _streaming(runner: Any, manifest: dict[str, Any], args: argparse.Namespace, cold_ms: float,
               artifact: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Whole sequences through the step artifact with its state fed back, against the parallel model's per-step
    outputs; per-step latency of one continuous stream and the real-time factor at the model's hop."""
    from edgest_check.stepping import latency_metrics, step_latency, stream_metrics, stream_sequence

    info = manifest["streaming"]
    seqs, expected = _arrays("steps", "expected", count=info["sequences"])
    init = _arrays("state", count=info["states"])[0]
    try:
        outputs = [stream_sequence(runner, q, init) for q in seqs]
        metrics = stream_metrics(expected, outputs)
    except Exception as exc:  # noqa: BLE001 - any runtime's failure, as one line
        raise SystemExit(f"error: streaming {artifact.name} failed: {_first_line(exc)}") from None
    broken = within(metrics, manifest["limits"])
    acc = {**metrics, "samples": len(seqs), "status": "failed" if broken else "passed", "limits": manifest["limits"],
           "reason": "; ".join(f"streaming: {b}" for b in broken)}
    lat = _latency(runner, lambda cfg: step_latency(runner, seqs[0], init, cfg), args, cold_ms)
    if "p50_ms" in lat:
        rtf = latency_metrics(lat, float(info["step_seconds"]), {})
        lat.update({k: rtf[k] for k in ("hop_ms", "real_time_factor", "real_time_factor_p90") if k in rtf})
    return acc, lat


def _summary(manifest: dict[str, Any], report: dict[str, Any], name: str, out: Path) -> str:
    """The one line the script prints."""
    acc, lat = report["accuracy"], report["latency"]
    stream = manifest.get("streaming")
    timing = ((f"step p50 {lat['p50_ms']:.3f} ms, p90 {lat['p90_ms']:.3f} ms, real-time factor "
               f"{lat.get('real_time_factor', float('nan')):.4f} at a {lat.get('hop_ms', 0):g} ms hop" if stream else
               f"p50 {lat['p50_ms']:.2f} ms, p90 {lat['p90_ms']:.2f} ms") if "p50_ms" in lat
              else f"latency not run: {lat['reason']}")
    judged = (f"streaming {acc['status']} (worst step SQNR {acc['sqnr_db']:.1f} dB over {acc['sequences']} sequences of "
              f"{acc['steps']} steps)" if stream else f"accuracy {acc['status']} (SQNR {acc['sqnr_db']:.1f} dB)")
    return f"{manifest['model']} on {name} ({manifest['runtime']}): {judged}, {timing} -> {out}"


def main() -> int:
    args = _arguments()
    _check_arguments(args)
    manifest = _manifest()
    artifact = HERE / manifest["artifact"]
    if artifact.is_file() and _sha256(artifact) != manifest["artifact_sha256"]:
        raise SystemExit(f"error: {artifact.name} does not match the bundle's sha256 (a corrupted copy?); copy the bundle again")
    t0 = time.perf_counter()
    runner = _load(manifest, artifact, args.threads)
    cold_ms = (time.perf_counter() - t0) * 1e3
    acc, latency = (_streaming if manifest.get("streaming") else _whole_input)(runner, manifest, args, cold_ms, artifact)
    runtime = manifest["runtime"]
    device = {"name": args.device_name, "os": platform.platform(), "machine": platform.machine(), "cpu": _cpu(),
              "python": platform.python_version(), "runtime": runtime, "runtime_version": _version(runtime)}
    if getattr(runner, "label", ""):
        device["runner"] = str(runner.label)
    report = {
        "kind": "edgest-device-report", "bundle_version": manifest["bundle_version"],
        "model": manifest["model"], "target": manifest["target"], "precision": manifest["precision"],
        "artifact_sha256": manifest["artifact_sha256"], "device": device, "accuracy": acc, "latency": latency,
        **({"streaming": {k: manifest["streaming"][k] for k in ("sequences", "steps", "step_seconds")}}
           if manifest.get("streaming") else {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write(args.out, report)
    print(_summary(manifest, report, args.device_name, args.out))
    return 0 if acc["status"] == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
