"""CUDA target on a GPU: eager vs torch.compile(mode="reduce-overhead") vs the AOTInductor package
(plain calls and CUDA-graph replay), fp32 and fp16, batch 1 latency and batch-64 throughput.

CUDA-event timing (warm-up, then the median of many calls), accuracy against eager fp32.
Needs an NVIDIA GPU and a CUDA build of torch, plus ``pip install -e targets/cuda``; without a
GPU it exits with status 1 and one line saying so. Run:
``python bench/cuda_gpu.py [--model squeezetime] [--batches 1,64] [--precisions fp32,fp16] [--json out.json]``.
"""

from __future__ import annotations

import sys

try:
    from edgest_cuda.gpu_bench import main
except ImportError:  # the target distribution is not installed
    print("cuda_gpu: edgest_cuda is not installed; run `pip install -e targets/cuda` first", file=sys.stderr)
    sys.exit(1)

if __name__ == "__main__":
    sys.exit(main())
