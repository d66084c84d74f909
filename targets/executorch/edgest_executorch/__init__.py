"""edgest's ExecuTorch target: lower with the XNNPACK partitioner to a ``.pte``, run it with ``executorch.runtime``."""
