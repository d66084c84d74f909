"""ExecuTorch's default XNNPACK lowering of a zoo model cast to fp16 and to bf16: what is delegated, how faithful, how fast.

Why the executorch target has no half precision yet: each type is the model (seeded init) cast
with its dtype literals (as the cuda target casts it), exported again, lowered with
``to_edge_transform_and_lower(XnnpackPartitioner())``, and run by the ExecuTorch runtime. Prints
the ops left outside the delegate, SQNR against eager fp32 on one seeded input, and p50 ms of the
types that are fully delegated, timed in turns in this process (the runtime's default threads).

    python bench/executorch_half.py --model squeezetime --types fp32,fp16[,bf16]

bf16 is left out by default: XNNPACK delegates none of it, and the portable kernels take minutes per run.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def lower(program: Any, dtype: Any, x: Any, path: Path) -> Counter[str]:
    """``program`` at ``dtype`` lowered to ``path``; the ops outside the delegate, by name."""
    import torch
    from edgest_cuda.target import _cast_graph_dtypes
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    module = copy.deepcopy(program).module().to(dtype)
    if dtype != torch.float32:
        _cast_graph_dtypes(module, dtype)
    exported = torch.export.export(module, (x.to(dtype),), strict=False)
    pte = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    path.write_bytes(pte.buffer)
    names = (str(getattr(n.target, "__name__", n.target)) for n in pte.exported_program().graph.nodes
             if n.op == "call_function")
    return Counter(n for n in names if "delegate" not in n and n not in ("getitem", "alloc", "view"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="squeezetime")
    ap.add_argument("--types", default="fp32,fp16")
    ap.add_argument("--out", type=Path, default=Path("edgest-executorch-half"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import torch
    from executorch.runtime import Runtime
    from peers_lib.prepare import input_shape, load_module

    from edgest.checks.accuracy import compare
    from edgest.host import isa_summary

    print(f"host ISA: {isa_summary()}; model {args.model} (seeded init)")
    module = load_module(args.model, None)
    x = torch.randn(input_shape(args.model), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = module(x).numpy()
    program = torch.export.export(module, (x,))
    args.out.mkdir(parents=True, exist_ok=True)
    methods: dict[str, tuple[Any, Any]] = {}
    for name in args.types.split(","):
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]
        t0 = time.perf_counter()
        outside = lower(program, dtype, x, args.out / f"{args.model}_{name}.pte")
        method = Runtime.get().load_program(str(args.out / f"{args.model}_{name}.pte")).load_method("forward")
        y = method.execute([x.to(dtype)])[0].float().numpy()
        print(f"{name}: lowered in {time.perf_counter() - t0:.1f} s; outside the delegate: {dict(outside) or 'nothing'}; "
              f"SQNR {compare([reference], [y])['sqnr_db']:.1f} dB", flush=True)
        if not outside:
            methods[name] = (method, x.to(dtype))
    times: dict[str, list[float]] = {n: [] for n in methods}
    for _ in range(3):
        for name, (method, xx) in methods.items():
            method.execute([xx])
            for _ in range(8):
                t0 = time.perf_counter()
                method.execute([xx])
                times[name].append((time.perf_counter() - t0) * 1e3)
    p50 = {n: float(np.median(t)) for n, t in times.items()}
    base = p50.get("fp32")
    print("p50 ms in turns: " + ", ".join(f"{n} {v:.1f}" + (f" ({v / base:.2f}x fp32)" if base else "") for n, v in p50.items()))


if __name__ == "__main__":
    main()
