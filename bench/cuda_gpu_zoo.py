"""The CUDA target across the zoo on one GPU, inside a time budget: eager vs the AOTInductor package
(with CUDA-graph replay) at batch 1 and a throughput batch, for every model named.

GPU time is scarce, so the work runs in two phases:

1. **compile** — every (model, precision, batch) package is compiled in parallel worker processes
   (``bench/cuda_gpu.py --warmup 0 --iters 1 --workdir DIR``), which also warms Inductor's caches for
   ``torch.compile``; their timings are thrown away.
2. **measure** — one process times each model in turn on the idle GPU, reusing the packages, and
   rewrites ``--json`` after each model, so a run cut short by the deadline keeps what it measured.

``python bench/cuda_gpu_zoo.py --models squeezetime,vivit_fa_ti --json gpu.json [--deadline-s 500]``
(``--help`` for the rest). ``--phase compile`` and ``--phase measure`` run one phase each (other work
can share the compile phase's time but should not share the GPU with the measure phase); a model whose
packages the compile phase did not finish is measured eager only. Needs an NVIDIA GPU; exits 1 with one
line without one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    from edgest_cuda.gpu_bench import (
        VARIANTS,
        BenchConfig,
        GpuUnavailable,
        package_path,
        print_table,
        require_gpu,
        run,
        torch_dtype,
    )
except ImportError:
    print("cuda_gpu_zoo: edgest_cuda is not installed; run `pip install -e targets/cuda` first", file=sys.stderr)
    sys.exit(1)

ZOO = ("squeezetime", "vivit_fe_ti", "vivit_fa_ti", "emov2_1m", "emov2_5m", "emov2_1m_video", "lmuformer",
       "lmuformer_spiking", "lmuformer_video")
BENCH = Path(__file__).resolve().parent / "cuda_gpu.py"


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def compile_all(jobs: list[tuple[str, str, int, str]], workdir: Path, parallel: int, deadline: float) -> dict[str, str]:
    """Compile each (model, precision, batch) in its own process, ``parallel`` at a time, into ``workdir``
    (with its log); status per job."""
    env = dict(os.environ, TORCHINDUCTOR_COMPILE_THREADS=str(max(1, (os.cpu_count() or 4) // parallel)))

    def one(job: tuple[str, str, int, str]) -> tuple[str, str]:
        model, precision, batch, variants = job
        key = f"{model}-{precision}-b{batch}"
        left = deadline - time.monotonic()
        if left < 30:
            return key, "skipped: deadline"
        cmd = [sys.executable, str(BENCH), "--model", model, "--precisions", precision, "--batches", str(batch),
               "--variants", variants, "--warmup", "0", "--iters", "1", "--workdir", str(workdir)]
        with open(workdir / f"compile-{key}.log", "w") as log:
            try:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=left,
                                      check=False)
            except subprocess.TimeoutExpired:
                return key, "timeout"
        return key, "ok" if proc.returncode == 0 else f"exit {proc.returncode}"

    with ThreadPoolExecutor(parallel) as pool:
        return dict(pool.map(one, jobs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--precisions", default="fp16")
    ap.add_argument("--variants", default="eager,aoti-graph", help=f"any of {', '.join(VARIANTS)}")
    ap.add_argument("--full", default="squeezetime", help="models measured at fp32 too (the user's own example)")
    ap.add_argument("--parallel", type=int, default=4, help="compile processes at a time")
    ap.add_argument("--deadline-s", type=float, default=540.0, help="stop starting work after this many seconds")
    ap.add_argument("--measure-share", type=float, default=0.45,
                    help="share of the deadline kept for the measure phase")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/edgest-gpu-zoo"))
    ap.add_argument("--phase", choices=("both", "compile", "measure"), default="both")
    ap.add_argument("--json", type=Path, default=None, help="the measured figures (required unless --phase compile)")
    args = ap.parse_args()
    if args.json is None and args.phase != "compile":
        ap.error("--json is required to measure")
    try:
        gpu = require_gpu()
    except GpuUnavailable as exc:
        print(f"cuda_gpu_zoo: {exc}", file=sys.stderr)
        return 1
    start = time.monotonic()
    models, precisions = _csv(args.models), _csv(args.precisions)
    batches = [int(b) for b in _csv(args.batches)]
    args.workdir.mkdir(parents=True, exist_ok=True)
    full = set(_csv(args.full))
    plan = {m: (sorted(set(precisions) | {"fp32"}) if m in full else precisions, _csv(args.variants)) for m in models}
    compiled: dict[str, str] = {}
    compile_s = 0.0
    if args.phase != "measure":
        share = 1.0 if args.phase == "compile" else 1 - args.measure_share
        jobs = [(m, p, b, ",".join(plan[m][1])) for m in models for p in plan[m][0] for b in batches]
        print(f"compile phase: {len(jobs)} jobs, {args.parallel} at a time, on {gpu}", flush=True)
        compiled = compile_all(jobs, args.workdir, args.parallel, start + args.deadline_s * share)
        compile_s = round(time.monotonic() - start, 1)
        print(f"compile phase: {compile_s} s: {json.dumps(compiled)}", flush=True)
        if args.phase == "compile":
            return 0
    summary: dict = {"gpu": gpu, "compile_phase_s": compile_s, "compile": compiled, "models": {}}
    for model in models:
        if time.monotonic() - start > args.deadline_s:
            summary["models"][model] = {"status": "skipped: deadline"}
            continue
        t0 = time.monotonic()
        model_precisions, variants = plan[model]
        dtypes = [torch_dtype(p) for p in model_precisions]
        if any(v.startswith("aoti") for v in variants) and not all(
                package_path(args.workdir, model, d, b).exists() for d in dtypes for b in batches):
            variants = ["eager"]  # a package the compile phase did not finish would be compiled here, on GPU time
        cfg = BenchConfig(model=model, batches=tuple(batches), precisions=tuple(model_precisions),
                          variants=tuple(variants), warmup=args.warmup, iters=args.iters, workdir=str(args.workdir))
        try:
            result = run(cfg, log=lambda line: print(line, flush=True))
        except Exception as exc:  # noqa: BLE001 - one model's failure must not lose the others
            summary["models"][model] = {"status": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}
        else:
            result["measure_s"] = round(time.monotonic() - t0, 1)
            summary["models"][model] = result
            print_table(result)
        args.json.write_text(json.dumps(summary, indent=2))
    args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
