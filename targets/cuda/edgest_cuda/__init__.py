"""edgest's CUDA target: AOTInductor ``.pt2`` packages for NVIDIA GPUs (CPU when there is none).

See :mod:`edgest_cuda.target` for the options and :mod:`edgest_cuda.gpu_bench` for the GPU
benchmark (eager vs torch.compile vs the AOTInductor package, fp32/fp16, CUDA-event timing).
"""
