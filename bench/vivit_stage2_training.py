"""SFA-ViViT stage 2 (frozen spatial encoder + adapter) vs full fine-tuning: step time and peak memory.

Every mode trains the same config at the same clip length (AdamW, cross-entropy, random clips)
in a fresh subprocess, so peak memory is not polluted by another mode:
    fe_full    plain ViViT FE, everything trainable (the paper's baseline);
    fa_full    ViViT FE + frame adapter, everything trainable;
    fa_frozen  stage 2: freeze_spatial(), only adapter + temporal encoder + head train.
Memory: on CUDA, torch.cuda.max_memory_allocated over the training steps; on CPU, peak RSS
(getrusage ru_maxrss) minus the RSS just before the first step (model, optimizer object and the
batch already resident), i.e. activations + gradients + optimizer state + allocator slack.
Time ratios are given on the median and on the fastest step (the latter is the steadier figure
on a shared host). Run: ``python bench/vivit_stage2_training.py [--model vivit_fa_s --frames 16
--size 112 --batch 2 --steps 5 --rounds 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODES = ("fe_full", "fa_full", "fa_frozen")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def worker(args: argparse.Namespace) -> dict:
    import torch
    import torch.nn.functional as F

    from edgest_models import vivit

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cuda = torch.cuda.is_available() and not args.cpu
    dev = torch.device("cuda" if cuda else "cpu")
    name = args.model.replace("vivit_fa_", "vivit_fe_") if args.mode == "fe_full" else args.model
    model = getattr(vivit, name)(num_frames=args.frames, image_size=args.size).to(dev)
    if args.mode == "fa_frozen":
        model.freeze_spatial()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size, device=dev)
    y = torch.randint(0, model.num_classes, (args.batch,), device=dev)

    def step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    rss0, maxrss0 = _rss_bytes(), _maxrss_bytes()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        mem0 = torch.cuda.memory_allocated()
    for _ in range(args.warmup):
        step()
    times = [step() for _ in range(args.steps)]
    peak = torch.cuda.max_memory_allocated() - mem0 if cuda else _maxrss_bytes() - rss0
    return {
        "mode": args.mode, "model": name, "device": str(dev), "threads": args.threads,
        "params": sum(p.numel() for p in model.parameters()), "trainable": sum(p.numel() for p in params),
        "step_s_median": statistics.median(times), "step_s_mean": statistics.fmean(times), "step_s": times,
        "peak_mb": peak / 2**20, "rss_before_mb": rss0 / 2**20, "maxrss_before_mb": maxrss0 / 2**20,
        "memory": "cuda max_memory_allocated" if cuda else "peak RSS - RSS before training",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vivit_fa_s", help="a vivit_fa_* variant (fe_full uses its vivit_fe_* twin)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="fresh subprocesses per mode, interleaved")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--cpu", action="store_true", help="stay on CPU even if CUDA is available")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    ap.add_argument("--worker", dest="mode", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(worker(args)))
        return

    runs: dict[str, list[dict]] = {m: [] for m in args.modes.split(",")}
    for _ in range(args.rounds):  # modes interleaved, so a busy spell on a shared host hits all of them
        for mode in runs:
            cmd = [sys.executable, __file__, "--model", args.model, "--frames", str(args.frames), "--size", str(args.size),
                   "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--threads", str(args.threads), "--worker", mode] + (["--cpu"] if args.cpu else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            runs[mode].append(r)
            print(f"{mode}: median {r['step_s_median']:.3f} s/step, min {min(r['step_s']):.3f}, peak {r['peak_mb']:.0f} MB",
                  file=sys.stderr)
    rows = []
    for mode, rs in runs.items():
        times = [t for r in rs for t in r["step_s"]]
        rows.append({**rs[0], "step_s": times, "step_s_median": statistics.median(times), "step_s_min": min(times),
                     "peak_mb": max(r["peak_mb"] for r in rs)})

    from rich.console import Console
    from rich.table import Table

    from edgest.host import cpu_model

    ref = next((r for r in rows if r["mode"] == "fe_full"), rows[0])
    r0 = rows[0]
    where = "CUDA" if r0["device"].startswith("cuda") else f"{cpu_model()}, {args.threads} thread(s)"
    table = Table(title=f"{args.model} training step, {args.batch}x3x{args.frames}x{args.size}x{args.size}, AdamW, {where}")
    for col in ("mode", "model", "trainable", "median s", "min s", "time x (median)", "time x (min)", "peak MB", "mem x"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["mode"], r["model"], f"{r['trainable']:,}", f"{r['step_s_median']:.3f}", f"{r['step_s_min']:.3f}",
                      f"{r['step_s_median'] / ref['step_s_median']:.2f}", f"{r['step_s_min'] / ref['step_s_min']:.2f}",
                      f"{r['peak_mb']:.0f}", f"{r['peak_mb'] / ref['peak_mb']:.2f}")
    Console(width=max(Console().width, 130)).print(table)
    print(f"ratios vs {ref['mode']}; memory = {r0['memory']}; per mode {args.rounds} subprocess(es) x "
          f"({args.warmup} warm-up + {args.steps} timed steps)")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
