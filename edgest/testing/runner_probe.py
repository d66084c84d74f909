"""Child-process side of the target kit's runner tests (``python -m edgest.testing.runner_probe DIR``).

Loads an artifact with the target's ``load`` in a fresh process, as the checks do, so that a
runtime's side effects (thread pools, CPU affinity, a crash on bad input) never reach the test
process. Reads ``DIR/request.json`` (target ``module:qualname``, options, artifact, input
``.npy``) and writes ``DIR/result.json`` after each step, so a crash still leaves what finished.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _write(work: Path, result: dict[str, Any]) -> None:
    tmp = work / "result.json.tmp"
    tmp.write_text(json.dumps(result))
    tmp.replace(work / "result.json")


def _outcome(call: Any, root: Path | None) -> dict[str, Any]:
    """What ``call()`` raised: its type, message, whether it is an edgest error, and whether the plugin raised it."""
    from edgest.errors import EdgestError
    from edgest.testing.probes import own_raise

    try:
        call()
    except Exception as exc:  # noqa: BLE001 - reported to the kit, which judges it
        return {"raised": True, "type": type(exc).__name__, "message": str(exc).strip()[:300],
                "edgest": isinstance(exc, EdgestError), "own": own_raise(exc, root)}
    return {"raised": False}


def main(work: Path) -> int:
    import numpy as np

    from edgest.errors import TargetUnavailable
    from edgest.testing.probes import package_dir

    req = json.loads((work / "request.json").read_text())
    from edgest.checks.isolated import load_class

    cls = load_class(req["target"])
    target, artifact, result = cls(**req["options"]), Path(req["artifact"]), {}
    host = cls.host_unavailable_reason()
    if host:
        _write(work, {"unavailable": host})
        return 0
    try:
        runner = target.load(artifact, threads=1)
    except TargetUnavailable as exc:
        _write(work, {"unavailable": str(exc)})
        return 0
    threads = getattr(runner, "threads", None)
    result["threads"] = threads if isinstance(threads, int) and not isinstance(threads, bool) else repr(threads)
    _write(work, result)
    outputs = runner.run([np.load(work / "input.npy")])
    result["outputs"] = {"type": type(outputs).__name__,
                         "items": [type(o).__name__ for o in outputs] if isinstance(outputs, (list, tuple)) else [],
                         "shape0": list(np.shape(outputs[0])) if isinstance(outputs, (list, tuple)) and outputs else None}
    _write(work, result)
    root = package_dir(cls.__module__)
    result["missing_load"] = _outcome(lambda: target.load(work / "missing" / artifact.name, threads=1), root)
    _write(work, result)
    result["no_inputs"] = _outcome(lambda: runner.run([]), root)
    _write(work, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
