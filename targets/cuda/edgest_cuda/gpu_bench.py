"""GPU benchmark of the CUDA target: eager, torch.compile and AOTInductor; CUDA-event timing.

Compares eager PyTorch, ``torch.compile(mode="reduce-overhead")`` and the AOTInductor package
(plain calls and CUDA-graph replay), fp32 and fp16, at batch 1 (latency) and a throughput
batch (clips/s).

Timing is on the GPU: each timed call sits between two ``torch.cuda.Event(enable_timing=True)``
records; after a warm-up the median, p90 and minimum of ``iters`` calls are reported. Inputs
stay on the GPU (no host copies in the timed region); the AOTInductor package is compiled once per precision
and batch (static shapes) and shared by ``aoti`` and ``aoti-graph``. Accuracy of every variant is measured
against eager fp32 on the same batch with edgest's accuracy metrics.

Run ``python bench/cuda_gpu.py`` (``--help`` for the options). CI has no GPU: :func:`require_gpu`
raises :class:`GpuUnavailable` with a one-line reason, and the script exits with it.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest_cuda.target import torch_dtype

if TYPE_CHECKING:
    import torch

VARIANTS = ("eager", "compile", "aoti", "aoti-graph")


class GpuUnavailable(RuntimeError):
    """No CUDA device visible to torch: the benchmark cannot run here."""


@dataclass(frozen=True)
class BenchConfig:
    """What to measure: model, batch sizes, precisions, variants and how long."""

    model: str = "squeezetime"
    batches: tuple[int, ...] = (1, 64)
    precisions: tuple[str, ...] = ("fp32", "fp16")
    variants: tuple[str, ...] = VARIANTS
    warmup: int = 20
    iters: int = 200
    seed: int = 0
    #: stand-in weights (:func:`edgest.testing.weights.responsive`) for a model that ignores its input at
    #: its init (EMOv2, spiking LMUFormer: SQNR against a constant says nothing), as the CPU benches do
    responsive_weights: bool = True
    #: folder that keeps the AOTInductor packages between runs (None: a temporary one); a package
    #: already there for the same model, dtype and batch is loaded instead of compiled again
    workdir: str | None = None


@dataclass
class Row:
    """One measured (variant, precision, batch)."""

    variant: str
    precision: str
    batch: int
    status: str = "ok"
    median_ms: float | None = None
    p90_ms: float | None = None
    min_ms: float | None = None
    clips_per_s: float | None = None
    setup_s: float | None = None
    sqnr_db: float | None = None
    max_abs: float | None = None
    note: str = ""


def require_gpu() -> str:
    """The GPU's name; :class:`GpuUnavailable` naming the reason when torch sees none."""
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise GpuUnavailable(
            f"the CUDA benchmark needs an NVIDIA GPU, but torch {torch.__version__} ({build}) sees no CUDA device; "
            "run it on a machine with a GPU and a CUDA build of torch (https://pytorch.org/get-started/locally/)"
        )
    return torch.cuda.get_device_name(0)


def time_cuda(fn: Callable[[], Any], warmup: int, iters: int) -> dict[str, float]:
    """Median/p90/min milliseconds of ``fn`` measured with CUDA events, after ``warmup`` calls."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for s, e in zip(starts, ends):
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    times = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    return {"median_ms": statistics.median(times), "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
            "min_ms": times[0]}


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def package_path(workdir: Path, model: str, dtype: torch.dtype, batch: int) -> Path:
    """Where the package of ``model`` at ``dtype`` and ``batch`` is kept in ``workdir``."""
    return workdir / f"{model}-{str(dtype).removeprefix('torch.')}-b{batch}.pt2"


def _package(module: torch.nn.Module, x: torch.Tensor, path: Path) -> str:
    """The AOTInductor package for ``module`` at ``x``'s shape and dtype, compiled once (freezing on,
    as the cuda target does) and shared by the ``aoti`` and ``aoti-graph`` variants; a package already
    at ``path`` is reused. Written to a temporary name first, so a killed compile leaves no package."""
    import torch

    if not path.exists():
        partial = path.with_suffix(".partial.pt2")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.export.export(module, (x,), strict=False)
            torch._inductor.aoti_compile_and_package(program, package_path=str(partial), inductor_configs={"freezing": True})
        partial.replace(path)
    return str(path)


def _build_variant(variant: str, module: torch.nn.Module, x: torch.Tensor, package: Path) -> Callable[[], Any]:
    """A no-argument callable running ``variant`` of ``module`` (already on the GPU at its dtype) on ``x``."""
    import torch

    if variant == "eager":
        return lambda: module(x)
    if variant == "compile":
        compiled = torch.compile(module, mode="reduce-overhead")

        def run_compiled() -> Any:
            torch.compiler.cudagraph_mark_step_begin()
            return compiled(x)

        return run_compiled
    from edgest_cuda.device import load_package

    model = load_package(_package(module, x, package), x.device, single_threaded=variant == "aoti-graph")
    if variant == "aoti":
        return lambda: model(x)
    from edgest_cuda.target import capture_cuda_graph

    graph, outputs = capture_cuda_graph(lambda xs: [_first(model(*xs))], [x])

    def replay() -> torch.Tensor:
        graph.replay()
        return outputs[0]

    return replay


def run(cfg: BenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every (precision, batch, variant) of ``cfg``; returns a JSON-able summary."""
    gpu = require_gpu()
    import torch

    from edgest.checks.accuracy import compare
    from edgest.plugins import get_registry
    from edgest_cuda.target import no_tf32

    entry = get_registry().model(cfg.model)
    shape = tuple(entry.spec.input.shape)
    rows: list[Row] = []
    torch.backends.cudnn.benchmark = True
    no_tf32()  # fp32 means fp32: comparable with the other targets
    with tempfile.TemporaryDirectory(prefix="edgest-gpu-bench-") as tmp, torch.no_grad():
        workdir = Path(cfg.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        base = entry.build().eval()
        if cfg.responsive_weights:
            from edgest.testing.weights import ignores_its_input, responsive

            if ignores_its_input(entry, cfg.seed):
                base = responsive(base, shape, cfg.seed)
        for batch in cfg.batches:
            gen = torch.Generator().manual_seed(cfg.seed)
            x32 = torch.randn((batch, *shape[1:]), generator=gen).cuda()
            ref_module = copy.deepcopy(base).cuda()
            reference = _first(ref_module(x32)).float().cpu().numpy()
            del ref_module
            for precision in cfg.precisions:
                dtype = torch_dtype(precision)
                x = x32.to(dtype)
                for variant in cfg.variants:
                    row = Row(variant, precision, batch)
                    log(f"{cfg.model} {variant} {precision} batch {batch} …")
                    try:
                        module = copy.deepcopy(base).to("cuda", dtype)
                        t0 = time.perf_counter()
                        fn = _build_variant(variant, module, x, package_path(workdir, cfg.model, dtype, batch))
                        out = _first(fn())
                        torch.cuda.synchronize()
                        row.setup_s = round(time.perf_counter() - t0, 2)
                        m = compare([reference], [out.float().cpu().numpy()])
                        row.sqnr_db, row.max_abs = m["sqnr_db"], m["max_abs"]
                        timing = time_cuda(fn, cfg.warmup, cfg.iters)
                        row.median_ms, row.p90_ms, row.min_ms = timing["median_ms"], timing["p90_ms"], timing["min_ms"]
                        row.clips_per_s = batch / (timing["median_ms"] / 1e3)
                    except Exception as exc:  # noqa: BLE001 - one failing variant must not lose the others
                        row.status = "failed"
                        row.note = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
                    finally:
                        torch.compiler.reset()
                        torch.cuda.empty_cache()
                    rows.append(row)
    return {
        "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda, "model": cfg.model,
        "input_shape": list(shape), "config": asdict(cfg), "rows": [asdict(r) for r in rows],
    }


def print_table(result: dict[str, Any]) -> None:
    """The summary as a rich table (one row per variant, precision and batch)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['model']} on {result['gpu']} (torch {result['torch']}, CUDA {result['cuda']}), "
                        "CUDA-event timing, median of "
                        f"{result['config']['iters']} after {result['config']['warmup']} warm-up")
    for col in ("variant", "precision", "batch", "median ms", "p90 ms", "clips/s", "setup s", "SQNR dB vs eager fp32", "note"):
        table.add_column(col)
    for r in result["rows"]:
        fmt = (lambda v, f: "-" if v is None else format(v, f))
        table.add_row(r["variant"], r["precision"], str(r["batch"]), fmt(r["median_ms"], ".3f"), fmt(r["p90_ms"], ".3f"),
                      fmt(r["clips_per_s"], ".1f"), fmt(r["setup_s"], ".1f"), fmt(r["sqnr_db"], ".1f"),
                      r["note"] or ("" if r["status"] == "ok" else r["status"]))
    Console(width=180).print(table)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """``python bench/cuda_gpu.py``: exit 0 when measured, 1 with one line when there is no GPU."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=BenchConfig.model)
    ap.add_argument("--batches", default="1,64", help="batch sizes; the last is the throughput batch")
    ap.add_argument("--precisions", default="fp32,fp16")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"any of {', '.join(VARIANTS)}")
    ap.add_argument("--warmup", type=int, default=BenchConfig.warmup)
    ap.add_argument("--iters", type=int, default=BenchConfig.iters)
    ap.add_argument("--workdir", default=None, help="keep AOTInductor packages here and reuse them (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    variants = _csv(args.variants)
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(VARIANTS)}")
    cfg = BenchConfig(model=args.model, batches=tuple(int(b) for b in _csv(args.batches)),
                      precisions=_csv(args.precisions), variants=variants, warmup=args.warmup, iters=args.iters,
                      workdir=args.workdir)
    try:
        require_gpu()
    except GpuUnavailable as exc:
        import sys

        print(f"cuda_gpu: {exc}", file=sys.stderr)
        return 1
    result = run(cfg, log=lambda line: print(line, flush=True))
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0
