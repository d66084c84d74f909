"""Step-by-step smoke test of AOTInductor on a GPU, for finding where a package crashes.

Each step prints one line before and after it, so with ``python -X faulthandler`` a segfault's
Python stack and the last line printed name the step: eager on the GPU, export + compile of a
package, load and call (multi-threaded runner), load and call with ``run_single_threaded``, CUDA
graph capture and replay. Ends with eager latency of the full model (fp16, CUDA events).

``python -X faulthandler bench/cuda_gpu_smoke.py [--model squeezetime_tiny] [--full squeezetime]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def step(name: str) -> float:
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
    return time.perf_counter()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="squeezetime_tiny")
    ap.add_argument("--full", default="squeezetime", help="model whose eager latency ends the run ('' to skip)")
    args = ap.parse_args()
    import torch
    from edgest_cuda.device import load_package
    from edgest_cuda.gpu_bench import GpuUnavailable, require_gpu, time_cuda
    from edgest_cuda.target import capture_cuda_graph, no_tf32

    from edgest.checks.accuracy import compare
    from edgest.plugins import get_registry

    try:
        print(require_gpu(), torch.__version__, torch.version.cuda, flush=True)
    except GpuUnavailable as exc:
        print(f"cuda_gpu_smoke: {exc}", file=sys.stderr)
        return 1
    no_tf32()
    entry = get_registry().model(args.model)
    torch.manual_seed(0)
    module = entry.build().eval()
    x_cpu = torch.randn(entry.spec.input.shape)
    with torch.no_grad():
        ref = module(x_cpu).numpy()
        t = step("eager on cuda")
        gpu_module = module.cuda()
        x = x_cpu.cuda()
        print("  eager cuda vs cpu", compare([ref], [gpu_module(x).cpu().numpy()]), f"{time.perf_counter() - t:.1f}s", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.pt2"
            t = step("export + aoti_compile_and_package (cuda, fp32, freezing)")
            program = torch.export.export(gpu_module, (x,), strict=False)
            torch._inductor.aoti_compile_and_package(program, package_path=str(path), inductor_configs={"freezing": True})
            print(f"  compiled in {time.perf_counter() - t:.1f}s, {path.stat().st_size} bytes", flush=True)
            for single in (False, True):
                step(f"load_package(run_single_threaded={single})")
                loaded = load_package(path, x.device, single_threaded=single)
                step("  call")
                out = loaded(x)
                out = out[0] if isinstance(out, (list, tuple)) else out
                torch.cuda.synchronize()
                print("  package vs cpu eager", compare([ref], [out.cpu().numpy()]), flush=True)
            step("cuda graph capture + replay")
            graph, outs = capture_cuda_graph(lambda xs: [loaded(*xs)[0]], [x])
            graph.replay()
            torch.cuda.synchronize()
            print("  graph vs cpu eager", compare([ref], [outs[0].cpu().numpy()]), flush=True)
            print("  replay median ms", time_cuda(graph.replay, 10, 100), flush=True)
        if args.full:
            full = get_registry().model(args.full)
            big = full.build().eval().to("cuda", torch.float16)
            for batch in (1, 64):
                xb = torch.randn((batch, *full.spec.input.shape[1:]), device="cuda", dtype=torch.float16)
                t = time_cuda(lambda: big(xb), 5, 30)  # noqa: B023 - called before xb changes
                print(f"  eager fp16 {args.full} batch {batch}: {t['median_ms']:.3f} ms, "
                      f"{batch / t['median_ms'] * 1e3:.0f} clips/s", flush=True)
    print("smoke: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
