"""How fast an OpenVINO IR could run on this CPU at best: its MACs over the best throughput its own kernels reach.

Compiles each IR on the CPU plugin with per-layer counters (as ``bench/openvino_layer_profile.py``; a
dynamic input is first reshaped to ``--input-shape``, so that every layer's shape is known),
times ``--runs`` inferences in turns, and for every compute layer (convolutions, fully connected,
matmuls) takes its multiply-accumulates from the runtime model's shapes and its time from the counters.
Prints per model: the wall p50, the compute layers' MACs, time and mean throughput, the throughput the
fastest layers reach (the MAC-weighted 90th percentile: what this kernel library sustains on this CPU at
that precision), the floor (all MACs at that throughput, nothing else), and the time outside compute.
``--peer MS`` adds the best ratio to a peer's p50 the floor allows.

Used for issue 22's question "can SqueezeTime's int8 be 0.8x of OpenVINO + NNCF's?": both artifacts run
the same int8 convolutions of oneDNN, and the floor says how far any exact rewrite could go.

    python bench/openvino_compute_floor.py /tmp/edgest-peers/squeezetime/edgest/cells/squeezetime__openvino__int8/model.xml \\
        --input-shape 1x3x16x224x224 --threads 1 --peer 33.2
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openvino_layer_profile import (  # after the path line above
    compiled,
    inputs_for,
    missing_irs,
)

#: runtime layer types whose MACs are counted
COMPUTE = ("Convolution", "FullyConnected", "FullyConnectedQuantizedLegacy", "MatMul")


def layer_macs(op: Any) -> int:
    """Multiply-accumulates of one runtime compute layer, from its output shape and its weights' (or second input's)."""
    kind = op.get_rt_info()["layerType"].astype(str)
    out = [int(d) for d in op.get_output_partial_shape(0).to_shape()]
    other = [int(d) for d in op.input(1).get_partial_shape().to_shape()] if op.get_input_size() > 1 else []
    if kind == "Convolution":  # weights [O, C/g, k...] or grouped [g, O/g, C/g, k...]: MACs per output = C/g * k...
        per_output = math.prod(other[1:]) if len(other) == len(out) else math.prod(other[2:])
        return math.prod(out) * per_output
    if kind == "MatMul":  # [.., M, K] x [.., K, N]
        return math.prod(out) * int(op.input(0).get_partial_shape().to_shape()[-1])
    return math.prod(out) * (other[-1] if other else 0)  # fully connected: weights [N, K]


def profile(path: Path, threads: int, runs: int, shape: tuple[int, ...] | None) -> dict[str, Any]:
    """Wall p50 and per-layer (MACs, ms per run) of the IR's compute layers, plus the other layers' ms per run."""
    import openvino as ov

    core = ov.Core()
    source = core.read_model(str(path))
    if shape is not None and not all(p.get_partial_shape().is_static for p in source.inputs):
        source.reshape(list(shape))  # static, so that every layer's shape (and MACs) is known
    model = compiled(core, source, threads)
    ops = [op for op in model.get_runtime_model().get_ordered_ops() if op.get_rt_info()["layerType"].astype(str) in COMPUTE]
    macs = {op.get_friendly_name(): layer_macs(op) for op in ops}
    shapes = {op.get_friendly_name(): " x ".join(str(i.get_partial_shape()) for i in op.inputs()[:2]) for op in ops}
    request, xs = model.create_infer_request(), inputs_for(model, shape)
    for _ in range(3):
        request.infer(xs, share_inputs=True)
    wall, ms = [], dict.fromkeys(macs, 0.0)
    other = 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        request.infer(xs, share_inputs=True)
        wall.append(time.perf_counter() - t0)
        for layer in request.profiling_info:
            spent = layer.real_time.total_seconds() * 1e3 / runs
            if layer.node_name in ms:
                ms[layer.node_name] += spent
            else:
                other += spent
    return {"p50_ms": statistics.median(wall) * 1e3, "layers": [(macs[n], ms[n]) for n in macs], "other_ms": other,
            "names": list(macs), "shapes": shapes}


def sustained(layers: list[tuple[int, float]], share: float = 0.9) -> float:
    """GMAC/s that the layers holding the fastest ``1 - share`` of all MACs reach (MAC-weighted percentile)."""
    rated = sorted((m / (t * 1e6), m) for m, t in layers if t > 0 and m > 0)
    total, seen = sum(m for _, m in rated), 0
    for rate, m in rated:
        seen += m
        if seen >= share * total:
            return rate
    return rated[-1][0] if rated else float("nan")


def main() -> int:
    from edgest.host import cpu_model, isa_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="OpenVINO IR files (.xml)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--input-shape", default=None, help="shape fed to a dynamic input, e.g. 1x3x16x224x224")
    parser.add_argument("--worst", type=int, default=0, help="list the N layers that lose the most time to the floor")
    parser.add_argument("--peer", type=float, default=None, metavar="MS", help="a peer's p50 to state the best ratio against")
    args = parser.parse_args()
    if missing_irs("openvino_compute_floor", args.models):
        return 2
    shape = tuple(int(d) for d in args.input_shape.split("x")) if args.input_shape else None
    print(f"host: {cpu_model()}, {os.cpu_count()} cores, ISA: {isa_summary()}; {args.threads} thread(s), {args.runs} runs")
    for path in args.models:
        r = profile(path, args.threads, args.runs, shape)
        macs, ms = sum(m for m, _ in r["layers"]), sum(t for _, t in r["layers"])
        peak = sustained(r["layers"])
        floor = macs / (peak * 1e6)
        print(f"\n{path}\n  p50 {r['p50_ms']:.2f} ms; compute layers {len(r['layers'])}: {macs / 1e9:.3f} GMAC in "
              f"{ms:.2f} ms ({macs / (ms * 1e6):.0f} GMAC/s mean); the fastest layers sustain {peak:.0f} GMAC/s")
        print(f"  floor (every MAC at {peak:.0f} GMAC/s, nothing else): {floor:.2f} ms; other layers {r['other_ms']:.2f} ms; "
              f"wall beyond the counters {r['p50_ms'] - ms - r['other_ms']:.2f} ms")
        lost = sorted(((t - m / (peak * 1e6), n, m / (t * 1e6)) for n, (m, t) in zip(r["names"], r["layers"])),
                      reverse=True)
        for ms_lost, name, rate in lost[:args.worst]:
            print(f"    {ms_lost:6.2f} ms lost at {rate:4.0f} GMAC/s  {r['shapes'][name]:<40} {name[:50]}")
        if args.peer:
            print(f"  against a peer at {args.peer:.2f} ms: now {r['p50_ms'] / args.peer:.2f}x, "
                  f"at the floor {floor / args.peer:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
