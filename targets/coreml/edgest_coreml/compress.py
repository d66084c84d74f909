"""Weight compression of a saved ``.mlpackage`` with ``coremltools.optimize.coreml``.

Works on any host: the package is opened without the Core ML runtime
(``MLModel(..., skip_model_load=True)``), compressed, and saved back. What comes out holds
``constexpr_*`` ops (``constexpr_affine_dequantize`` for linear int8, ``constexpr_lut_to_dense``
for palettisation, ``constexpr_blockwise_shift_scale`` for int4 per-block) that the MIL
reference interpreter decompresses, so the accuracy check judges the compressed weights.

Activation quantisation (W8A8) is not here: coremltools calibrates activations by predicting,
which needs macOS.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from edgest.errors import BadInput

#: option value → (coremltools config factory name, its arguments, oldest deployment target it needs)
SCHEMES: dict[str, tuple[str, dict[str, Any], str]] = {
    "linear-int8": ("OpLinearQuantizerConfig", {"mode": "linear_symmetric", "dtype": "int8", "granularity": "per_channel"}, "iOS16"),
    "palettize-8": ("OpPalettizerConfig", {"mode": "kmeans", "nbits": 8, "granularity": "per_tensor"}, "iOS16"),
    "palettize-6": ("OpPalettizerConfig", {"mode": "kmeans", "nbits": 6, "granularity": "per_tensor"}, "iOS16"),
    "palettize-4": ("OpPalettizerConfig", {"mode": "kmeans", "nbits": 4, "granularity": "per_tensor"}, "iOS16"),
    "int4-block": ("OpLinearQuantizerConfig", {"mode": "linear_symmetric", "dtype": "int4", "granularity": "per_block",
                                               "block_size": 32}, "iOS18"),
}
_PLATFORM_MIN = {"iOS16": 7, "iOS18": 9}  # specification versions


def check_scheme(scheme: str, spec_version: int, deployment_target: str) -> None:
    """Refuse a scheme the deployment target cannot hold, naming the fix."""
    needs = SCHEMES[scheme][2]
    if spec_version < _PLATFORM_MIN[needs]:
        raise BadInput(f"coreml option compress={scheme!r} needs minimum_deployment_target {needs} or newer "
                       f"(got {deployment_target}); raise it or choose another compress scheme")


def compress(path: Path, scheme: str) -> dict[str, Any]:
    """Compress the weights of the package at ``path`` in place; sizes before and after, in bytes."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    from edgest_coreml.convert import _quiet

    factory, kwargs, _ = SCHEMES[scheme]
    before = _weights_size(path)
    t0 = time.perf_counter()
    with _quiet():  # progress bars and pass logs
        model = ct.models.MLModel(str(path), skip_model_load=True)
        config = cto.OptimizationConfig(global_config=getattr(cto, factory)(**kwargs))
        fn = cto.linear_quantize_weights if factory == "OpLinearQuantizerConfig" else cto.palettize_weights
        compressed = fn(model, config)
        tmp = path.with_name(path.stem + ".compressed.mlpackage")
        compressed.save(str(tmp))
    shutil.rmtree(path)
    tmp.rename(path)
    after = _weights_size(path)
    return {"scheme": scheme, "coremltools_config": {factory: kwargs}, "weights_bytes_before": before,
            "weights_bytes_after": after, "ratio": round(after / before, 4) if before else None,
            "seconds": round(time.perf_counter() - t0, 3)}


def _weights_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path / "Data" / "com.apple.CoreML" / "weights").glob("*") if p.is_file())
