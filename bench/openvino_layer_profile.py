"""Where OpenVINO spends an inference, by kernel: the runtime's own per-layer counters for each IR given.

Each model is compiled on the CPU plugin with ``PERF_COUNT`` on (``NUM_STREAMS`` 1, the latency hint,
``--threads`` inference threads), run ``--warmup`` times, then ``--runs`` times in turns with the other
models; the counters' real time is summed per (layer type, kernel) and averaged per run. Prints, per
model and thread count, the wall p50, the counters' total and the heaviest kernels with their share, and
the share of all convolution kernels. Inputs are seeded normal noise of each model's static input shapes
(``--input-shape`` for a dynamic one; the model is compiled as it is, as ``bench/peers.py`` runs it).

Used on issue 22's question "can edgest's OpenVINO int8 artifact be 0.8x of OpenVINO + NNCF's?": run
``bench/peers.py --models squeezetime`` first (it keeps both IRs in its cache), then

    python bench/openvino_layer_profile.py \\
        /tmp/edgest-peers/squeezetime/edgest/cells/squeezetime__openvino__int8/model.xml \\
        /tmp/edgest-peers/squeezetime/peers/ov-nncf-int8/model.xml --threads 1,2 --input-shape 1x3x16x224x224
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def compiled(core: Any, model: Path | Any, threads: int) -> Any:
    """``model`` (an IR's path, or an ``ov.Model`` read already) compiled for the CPU with per-layer counters on."""
    source = core.read_model(str(model)) if isinstance(model, Path) else model
    return core.compile_model(source, "CPU", {
        "PERF_COUNT": True, "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"})


def missing_irs(script: str, paths: list[Path]) -> bool:
    """Whether any of ``paths`` is no file; if so, says which on stderr in one line, with the fix."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"{script}: no such IR: {', '.join(missing)}; run bench/peers.py first, or give the path of a model.xml",
              file=sys.stderr)
    return bool(missing)


def inputs_for(model: Any, shape: tuple[int, ...] | None, seed: int = 0) -> list[np.ndarray]:
    """Seeded normal noise of each input's static shape (``shape`` for a dynamic one) and element type."""
    rng = np.random.default_rng(seed)
    out = []
    for port in model.inputs:
        static = port.get_partial_shape().is_static
        if not static and shape is None:
            raise SystemExit(f"openvino_layer_profile: input {port.get_any_name()!r} has a dynamic shape "
                             f"({port.get_partial_shape()}); give --input-shape, e.g. 1x3x16x224x224")
        dims = tuple(port.get_shape()) if static else shape
        out.append(rng.standard_normal(dims).astype(port.get_element_type().to_dtype()))
    return out


def profile(paths: list[Path], threads: int, runs: int, warmup: int,
            shape: tuple[int, ...] | None = None) -> dict[Path, dict[str, Any]]:
    """Per model: wall seconds of each run and the counters' milliseconds per (layer type, kernel), per run. A
    model is compiled as it is (a dynamic input stays dynamic, as ``bench/peers.py`` runs it) and fed ``shape``."""
    import openvino as ov

    core = ov.Core()
    requests = {}
    for path in paths:
        model = compiled(core, path, threads)
        requests[path] = (model.create_infer_request(), inputs_for(model, shape))
    for request, xs in requests.values():
        for _ in range(warmup):
            request.infer(xs)
    out = {p: {"wall": [], "kernels": collections.Counter()} for p in paths}
    for _ in range(runs):  # in turns: what changes on the host meanwhile changes for every model
        for path, (request, xs) in requests.items():
            t0 = time.perf_counter()
            request.infer(xs)
            out[path]["wall"].append(time.perf_counter() - t0)
            for layer in request.profiling_info:
                out[path]["kernels"][(layer.node_type, layer.exec_type)] += layer.real_time.total_seconds() * 1e3 / runs
    return out


def print_table(path: Path, result: dict[str, Any], top: int) -> None:
    """The model's p50, counters' total, convolution share and heaviest kernels."""
    kernels: collections.Counter = result["kernels"]
    total = sum(kernels.values())
    conv = sum(ms for (kind, _), ms in kernels.items() if "Convolution" in kind)
    p50 = statistics.median(result["wall"]) * 1e3
    print(f"{path}\n  p50 {p50:.1f} ms; counters {total:.1f} ms per run; convolutions {conv:.1f} ms "
          f"({100 * conv / total if total else 0:.0f} %)")
    for (kind, kernel), ms in kernels.most_common(top):
        print(f"    {kind:<34} {kernel:<26} {ms:8.2f} ms {100 * ms / total if total else 0:5.1f} %")


def main() -> int:
    from edgest.host import cpu_model, isa_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="OpenVINO IR files (.xml)")
    parser.add_argument("--threads", default="1", help="comma-separated inference thread counts")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--top", type=int, default=8, help="kernels listed per model")
    parser.add_argument("--input-shape", default=None, help="shape fed to a dynamic input, e.g. 1x3x16x224x224")
    args = parser.parse_args()
    if missing_irs("openvino_layer_profile", args.models):
        return 2
    print(f"host: {cpu_model()}, {os.cpu_count()} cores, ISA: {isa_summary()}")
    for threads in (int(t) for t in args.threads.split(",")):
        print(f"\n== {threads} thread(s), {args.runs} runs in turns")
        shape = tuple(int(d) for d in args.input_shape.split("x")) if args.input_shape else None
        for path, result in profile(args.models, threads, args.runs, args.warmup, shape).items():
            print_table(path, result, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
