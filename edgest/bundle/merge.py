"""``edgest report merge``: fold device-report.json files into a run's or a bench's reports.

Every device report is checked before anything is written: its kind, the artifact it ran (its
sha256 must be the folder's), and its figures (numbers, finite; errors and latencies not
negative, agreements within 0..1). Merging is idempotent: a device's earlier results for the
same artifact are replaced where they stand, so merging a report twice changes nothing. The
folder's reports are rewritten atomically, so a full disk or Ctrl-C leaves them as they were.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgest.errors import BadInput
from edgest.records import CheckResult
from edgest.report.writers import read_json, write_reports

#: accuracy figures with a range (others must only be finite numbers)
_ACCURACY_RANGE = {"max_abs": (0, math.inf), "mean_abs": (0, math.inf), "output_scale": (0, math.inf),
                   "top1_agreement": (0, 1), "cosine": (-1 - 1e-6, 1 + 1e-6), "samples": (1, math.inf)}
_ACCURACY_TEXT = ("status", "reason", "limits")
#: what every accuracy check measures: a report without them judged nothing
_ACCURACY_REQUIRED = ("sqnr_db", "max_abs")
_LATENCY_REQUIRED = ("p50_ms", "p90_ms")
#: an hour per inference: a larger time is a broken clock or an edited report, not a measurement
_MAX_MS = 3.6e6
#: the largest device report run_on_device.py writes is a few KB; a larger file is not one
MAX_DEVICE_REPORT_BYTES = 16 * 2**20
_MAX_TEXT = 500


def _figure_problem(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf) -> str:
    """Why ``value`` is not a usable figure for ``name`` (a finite number within lo..hi), or ''."""
    if isinstance(value, list):
        return next((p for p in (_figure_problem(name, v, lo, hi) for v in value) if p), "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} is {json.dumps(value)[:40]}, not a number"
    if not math.isfinite(value):
        return f"{name} is {value}, not a finite number"
    if not lo <= value <= hi:
        return f"{name} is {value:g}, " + ("negative" if value < 0 <= lo else f"outside {lo:g}..{hi:g}")
    return ""


def device_problem(d: dict[str, Any]) -> str:
    """Why the device report ``d`` cannot be merged (malformed, non-numeric, non-finite or negative figures), or ''."""
    for key, typ in (("model", str), ("target", str), ("precision", str), ("device", dict), ("accuracy", dict), ("latency", dict)):
        if not isinstance(d.get(key), typ):
            return f"has no valid '{key}'"
    problem = _device_problem(d["device"]) or _streaming_problem(d.get("streaming", {}))
    if problem:
        return problem
    acc, lat = d["accuracy"], d["latency"]
    if acc.get("status") not in ("passed", "failed") or not isinstance(acc.get("limits", {}), dict):
        return "has no valid accuracy status or limits"
    problems = [f"accuracy has no {k}" for k in _ACCURACY_REQUIRED if k not in acc]
    problems += [_figure_problem(f"accuracy {k}", v, *_ACCURACY_RANGE.get(k, ())) for k, v in acc.items() if k not in _ACCURACY_TEXT]
    problems += [_figure_problem(f"accuracy limit {k}", v) for k, v in acc.get("limits", {}).items()]
    if lat.get("status") == "not_run":  # the runner may not be timed (e.g. a reference interpreter): say why
        problems += [] if isinstance(lat.get("reason"), str) else ["latency is not_run without a reason"]
        return next((p for p in problems if p), "")
    problems += [f"latency has no {k}" for k in _LATENCY_REQUIRED if k not in lat]
    problems += [f"latency {k} is a list, not a number" for k in _LATENCY_REQUIRED if isinstance(lat.get(k), list)]
    problems += [_latency_problem(k, v) for k, v in lat.items()]
    return next((p for p in problems if p), "")


def _streaming_problem(stream: Any) -> str:
    """A streaming bundle's report says how many sequences and steps it streamed, and the hop, as plain numbers."""
    if not isinstance(stream, dict):
        return "has no valid 'streaming'"
    return next((p for p in (_figure_problem(f"streaming {k}", v, 0) for k, v in stream.items()) if p), "")


def _latency_problem(key: str, value: Any) -> str:
    """A time is above 0 and at most an hour (a spread may be 0); counts and the rest are not negative."""
    if key.endswith("_ms") and key != "std_ms":
        problem = _figure_problem(f"latency {key}", value, 0, _MAX_MS)
        zero = not problem and any(v <= 0 for v in (value if isinstance(value, list) else [value]))
        return f"latency {key} is {value}, not a positive time" if zero else problem
    return _figure_problem(f"latency {key}", value, 0, _MAX_MS if key == "std_ms" else math.inf)


def _device_problem(device: dict[str, Any]) -> str:
    """The device is named, and describes itself in short text, finite numbers and booleans."""
    name = device.get("name")
    if not isinstance(name, str) or not name.strip():
        return "names no device"
    for key, value in device.items():
        if isinstance(value, str) and len(value) > _MAX_TEXT:
            return f"has a device {key} of {len(value):,} characters (at most {_MAX_TEXT})"
        if not isinstance(value, (str, bool, int, float)):
            return f"has a device {key} that is {json.dumps(value)[:40]}, not text or a number"
        if not isinstance(value, (str, bool)) and _figure_problem(f"device {key}", value):
            return _figure_problem(f"device {key}", value)
    return ""


def _load_device(path: Path) -> dict[str, Any]:
    try:
        size = Path(path).stat().st_size
        if size > MAX_DEVICE_REPORT_BYTES:
            raise BadInput(f"'{path}' is {size / 2**20:.0f} MB, far larger than a device report (at most "
                           f"{MAX_DEVICE_REPORT_BYTES // 2**20} MB); merge the device-report.json run_on_device.py wrote")
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as exc:
        what = "it is not valid JSON" if isinstance(exc, (ValueError, RecursionError)) else "it cannot be read"
        raise BadInput(f"cannot read device report '{path}': {what} ({str(exc).splitlines()[0][:120]}); merge the "
                       "device-report.json run_on_device.py wrote") from None
    if not isinstance(data, dict) or data.get("kind") != "edgest-device-report":
        raise BadInput(f"'{path}' is not an edgest device report (run_on_device.py writes device-report.json)")
    if not isinstance(data.get("artifact_sha256"), str):
        raise BadInput(f"device report '{path}' names no artifact sha256; merge the device-report.json run_on_device.py wrote")
    data["_path"] = str(path)
    return data


def _checked(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` without its bookkeeping, once its figures are known to be sound (BadInput otherwise)."""
    problem = device_problem(d)
    if problem:
        raise BadInput(f"device report '{d['_path']}' {problem}; run run_on_device.py again and merge the report it writes")
    return {k: v for k, v in d.items() if k != "_path"}


def merge_device_reports(folder: Path, device_reports: list[Path]) -> list[str]:
    """Merge into ``folder`` (a compile run or a bench folder); returns one line per merged report."""
    folder = Path(folder)
    devices = [_load_device(p) for p in device_reports]
    if (folder / "bench.json").is_file():
        return _merge_bench(folder, devices)
    if not (folder / "report.json").is_file():
        raise BadInput(_not_a_report_folder(folder))
    report = read_json(folder / "report.json")
    checks, lines = list(report.checks), []
    for raw in devices:
        if report.artifact is None or raw["artifact_sha256"] != report.artifact.sha256:
            raise BadInput(f"device report '{raw['_path']}' is for another artifact (sha256 differs from '{folder}'); "
                           "merge it into the run its bundle was built from")
        _same_cell(raw, {"model": report.model.name, "target": report.target, "precision": report.precision}, folder)
        _same_kind(raw, bool(report.streaming), folder)
        d = _checked(raw)
        lat = d["latency"]
        host = {**d["device"], "where": "device"}
        _put(checks, _judged(d, host))
        if lat.get("status") == "not_run":
            _put(checks, CheckResult("latency", "not_run", {}, {}, host, lat["reason"]))
            lines.append(f"merged {d['model']}/{d['target']} from {d['device']['name']}: latency not run ({lat['reason']})")
            continue
        _put(checks, CheckResult("latency", "passed", dict(lat), {}, host))
        timing = (f"streaming {d['accuracy']['status']}, step p50 {lat['p50_ms']:.3f} ms, real-time factor "
                  f"{lat.get('real_time_factor', float('nan')):.4f}" if "streaming" in d else f"p50 {lat['p50_ms']:.2f} ms")
        lines.append(f"merged {d['model']}/{d['target']} from {d['device']['name']}: {timing}")
    write_reports(replace(report, checks=tuple(checks)), folder)
    return lines


def _judged(d: dict[str, Any], host: dict[str, Any]) -> CheckResult:
    """The device's judged check: accuracy on the seeded inputs, or for a streaming bundle the streaming check
    (whole sequences, state fed back) with the per-step latency and real-time factor beside it, as on the host."""
    acc, lat = d["accuracy"], d["latency"]
    metrics = {k: v for k, v in acc.items() if k not in _ACCURACY_TEXT}
    if "streaming" not in d:
        return CheckResult("accuracy", acc["status"], metrics, acc.get("limits", {}), host, acc.get("reason", ""))
    from edgest.streaming.stepping import latency_metrics

    timed = lat if "p50_ms" in lat and "runs" in lat else None
    metrics.update(latency_metrics(timed, float(d["streaming"].get("step_seconds", 0)), lat))
    return CheckResult("streaming", acc["status"], metrics, acc.get("limits", {}), host, acc.get("reason", ""))


def _same_kind(raw: dict[str, Any], streaming: bool, folder: Path) -> None:
    """BadInput when a streaming device report meets a whole-input run, or the other way round."""
    if ("streaming" in raw) != streaming:
        kinds = ("a streaming bundle's", "a --streaming compile") if not streaming else ("a whole-input bundle's", "a whole-input compile")
        raise BadInput(f"device report '{raw['_path']}' is {kinds[0]} but '{folder}' is not {kinds[1]}; merge the "
                       "device-report.json run_on_device.py wrote, unedited, into the run its bundle was built from")


def _not_a_report_folder(folder: Path) -> str:
    """Why ``folder`` takes no merge (a bundle, or a folder of neither report), naming the folder that does."""
    from edgest.outdir import read_marker

    where = ("the run folder (edgest compile --out) or bench folder (edgest bench --out) its bundle was made from: "
             "edgest report merge RUN_OR_BENCH_DIR device-report.json")
    if (read_marker(folder) or {}).get("kind") == "bundle" or (folder / "manifest.json").is_file():
        return f"'{folder}' is a device bundle, which keeps no report; merge the device report into {where}"
    return f"'{folder}' holds neither report.json nor bench.json; merge the device report into {where}"


def _put(checks: list[CheckResult], new: CheckResult) -> None:
    """Replace the same device's check of the same kind where it stands, else append ``new``."""
    for i, old in enumerate(checks):
        if old.kind == new.kind and old.host.get("where") == "device" and old.host.get("name") == new.host["name"]:
            checks[i] = new
            return
    checks.append(new)


def _load_bench(folder: Path) -> dict[str, Any]:
    path = folder / "bench.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise BadInput(f"cannot read bench '{path}': {exc}") from None
    if not (isinstance(doc, dict) and doc.get("kind") == "edgest-bench" and isinstance(doc.get("cells"), list)
            and all(isinstance(c, dict) for c in doc["cells"]) and isinstance(doc.get("device_results", []), list)):
        raise BadInput(f"'{path}' is not an edgest bench document (damaged?); run edgest bench again")
    from edgest.bench import BENCH_SCHEMA_VERSION

    if str(doc.get("schema_version", "")).split(".")[0] != BENCH_SCHEMA_VERSION.split(".")[0]:  # 1.x: newer keys absent
        raise BadInput(f"bench '{path}' has schema {doc.get('schema_version')!r}; this edgest reads {BENCH_SCHEMA_VERSION}")
    return doc


def _same_cell(raw: dict[str, Any], cell: dict[str, Any], folder: Path) -> None:
    """BadInput when the device report names another model, target or precision than the artifact it claims."""
    for key in ("model", "target", "precision"):
        if raw.get(key) != cell.get(key):
            raise BadInput(f"device report '{raw['_path']}' says {key} {raw.get(key)!r} but its artifact in '{folder}' is "
                           f"{cell.get(key)!r}; merge the device-report.json run_on_device.py wrote, unedited")


def _merge_bench(folder: Path, devices: list[dict[str, Any]]) -> list[str]:
    from edgest.folder_lock import folder_lock

    with folder_lock(folder):  # not while a bench writes its own bench.json there
        return _merge_bench_locked(folder, devices)


def _merge_bench_locked(folder: Path, devices: list[dict[str, Any]]) -> list[str]:
    from edgest.report.bench_writers import write_bench_reports

    doc = _load_bench(folder)
    shas = {(c.get("artifact") or {}).get("sha256") for c in doc["cells"]} - {None, ""}
    results, lines = [r for r in doc.get("device_results", []) if isinstance(r, dict)], []
    for raw in devices:
        if raw["artifact_sha256"] not in shas:
            raise BadInput(f"device report '{raw['_path']}' matches no artifact in '{folder}' (sha256 differs); "
                           "merge it into the bench its bundle was built from")
        cells = [c for c in doc["cells"] if (c.get("artifact") or {}).get("sha256") == raw["artifact_sha256"]]
        _same_cell(raw, cells[0], folder)
        _same_kind(raw, bool(cells[0].get("streaming")), folder)
        d = _checked(raw)
        same = [i for i, x in enumerate(results) if x.get("artifact_sha256") == d["artifact_sha256"]
                and (x.get("device") or {}).get("name") == d["device"]["name"]]
        if same:
            results[same[0]] = d
        else:
            results.append(d)
        lines.append(f"merged {d['model']}/{d['target']} from {d['device']['name']}")
    write_bench_reports({**doc, "device_results": results}, folder)
    return lines
