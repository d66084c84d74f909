"""The timing process: every candidate of one model at one thread count, loaded in one process, timed in turns.

One process per thread count because ExecuTorch sizes its process-wide thread pool once
(:mod:`edgest_executorch.device`). Before loading each candidate the process writes its key to
the progress file, so that when a runtime crashes the whole process, :func:`run` names the
candidate, drops it and runs the rest again.

Accuracy: every candidate runs the same seeded standard-normal inputs (edgest's
:func:`~edgest.checks.accuracy.seeded_inputs`) and is compared with eager PyTorch on them
(:func:`~edgest.checks.accuracy.compare_multi`). With ``spec["task_samples"]`` (trained weights) it
also runs the labelled synthetic task set a compile with ``--weights`` is judged on, and is judged by
the compile's own :func:`edgest.checks.run.accuracy_check` at its precision's limits and task limits
(:mod:`peers_lib.trained`). Time: :func:`~edgest.checks.latency.measure_interleaved`; a spec with
``rounds`` 0 is not timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from peers_lib.builders import first_line


def work(spec: dict[str, Any]) -> dict[str, Any]:
    """Load, check and time ``spec["candidates"]`` at ``spec["threads"]``; results per candidate key."""
    import torch

    from edgest.checks.accuracy import compare_multi, seeded_inputs
    from edgest.checks.eager import eager_output_sets
    from edgest.checks.latency import measure_interleaved
    from peers_lib import runners, trained
    from peers_lib.prepare import input_shape, load_module

    threads, progress = int(spec["threads"]), Path(spec["progress"])
    torch.set_num_threads(threads)
    module = load_module(spec["model"], spec["weights"])
    inputs = seeded_inputs([input_shape(spec["model"])], spec["samples"], spec["seed"])
    reference = eager_output_sets(module, inputs)
    task = trained.labelled(spec["model"], module, spec.get("task_samples", 0), spec["seed"])
    results: dict[str, dict[str, Any]] = {}
    loaded: dict[str, Any] = {}
    for cand in spec["candidates"]:
        progress.write_text(cand["key"])
        try:
            runner, facts = runners.load(cand, module, threads, inputs[0][0])
            outputs = [list(runner.run(xs)) for xs in inputs]
            results[cand["key"]] = {"facts": facts, "accuracy": compare_multi(reference, outputs)}
            if task is not None:
                results[cand["key"]]["judged"] = trained.judge(cand, facts, reference, outputs, task, runner, spec["seed"])
            loaded[cand["key"]] = runner
        except Exception as exc:  # noqa: BLE001 - a runtime that cannot load or run the artifact is a row
            results[cand["key"]] = {"error": first_line(exc)}
        print(f"  [{threads} thr] {cand['key']}: {results[cand['key']].get('error', 'loaded')}", file=sys.stderr, flush=True)
    progress.write_text("timing")
    x = inputs[0]
    timed = loaded if spec["rounds"] > 0 else {}
    stats = measure_interleaved({k: (lambda r=r: r.run(x)) for k, r in timed.items()}, spec["rounds"]) if timed else {}
    for key, s in stats.items():
        results[key]["latency"] = s
    progress.write_text("done")
    return results


def main(spec_path: str) -> None:
    """Entry point of ``peers.py --worker SPEC``: read the spec, write the results beside it."""
    spec = json.loads(Path(spec_path).read_text())
    Path(spec["out"]).write_text(json.dumps(work(spec), indent=1))


def run(script: Path, spec: dict[str, Any], folder: Path) -> dict[str, dict[str, Any]]:
    """Run :func:`work` in a child (``script --worker``), again without any candidate that crashes it."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = {**spec, "progress": str(folder / "progress.txt"), "out": str(folder / "results.json")}
    crashed: dict[str, dict[str, Any]] = {}
    while True:
        Path(spec["out"]).unlink(missing_ok=True)
        (folder / "spec.json").write_text(json.dumps(spec, indent=1))
        proc = subprocess.run([sys.executable, str(script), "--worker", str(folder / "spec.json")], check=False)
        if proc.returncode == 0:
            return {**json.loads(Path(spec["out"]).read_text()), **crashed}
        at = Path(spec["progress"]).read_text() if Path(spec["progress"]).exists() else ""
        keys = [c["key"] for c in spec["candidates"]]
        if at not in keys:  # crashed outside any one candidate's load: nothing to drop
            why = f"the timing process exited with code {proc.returncode} ({at or 'before loading anything'})"
            return {**{k: {"error": why} for k in keys}, **crashed}
        crashed[at] = {"error": f"crashed the timing process (exit code {proc.returncode}) while loading or checking it"}
        spec = {**spec, "candidates": [c for c in spec["candidates"] if c["key"] != at]}
