"""Lowering: ``litert_torch.convert`` on the captured program → one ``.tflite`` file.

``litert_torch.convert`` takes an ``nn.Module`` and sample inputs; it is given the captured
program's module (``program.module()``), which it exports again (non-strict, static shapes),
decomposes, lowers to StableHLO/TFL MLIR and serialises. A program the target's quantizer
made (PT2E: quantize/dequantize ops around the quantised ops) is converted with litert-torch's
``QuantConfig`` for the same PT2E scheme, so the converter folds each Q/DQ pattern into an
int8 TFLite kernel instead of keeping float ops between quantize and dequantize nodes.

Before conversion, ``add``/``sub``/``rsub`` with an ``alpha`` are rewritten
(:func:`edgest.graph_fixes.without_alpha`): litert-torch 0.10 cannot lower them. A failure is one line naming the aten op without a lowering and the source
line it came from (:func:`explain`). litert-torch and torch are imported inside the functions (the
plugin must stay cheap to import).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.errors import Unsupported
from edgest.graph_fixes import without_alpha
from edgest.quantize.marks import qdq_targets
from edgest_litert.quiet import NativeLog, quiet

if TYPE_CHECKING:
    import torch

#: litert-torch's message for an aten op it has no lowering for, and torch's pointer to the source line
_NO_LOWERING = re.compile(r"Lowering not found: ([\w.]+)")
_SOURCE = re.compile(r'File "([^"]+)", line (\d+), in (\w+)')
#: PT2E ops (edgest.quantize.marks): any of them marks a quantised program; activations quantised ahead of time
#: mark a static one
_STATIC_MARK = ".quantize_per_tensor"


def pt2e_mode(program: torch.export.ExportedProgram) -> str | None:
    """``"static"`` or ``"dynamic"`` for a program with PT2E quantize/dequantize ops, else None.

    Static PT2E quantises activations with per-tensor ``quantize_per_tensor`` ops; the
    dynamic-range config leaves activations float and only the weights have Q/DQ pairs.
    """
    qdq = qdq_targets(program)
    if not qdq:
        return None
    return "static" if any(_STATIC_MARK in t for t in qdq) else "dynamic"


def quant_config(mode: str | None) -> Any:
    """litert-torch's ``QuantConfig`` for a PT2E program of ``mode`` (None for a float program)."""
    if mode is None:
        return None
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=mode == "dynamic")
    return QuantConfig(pt2e_quantizer=PT2EQuantizer().set_global(config))


def convert(program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], path: Path) -> dict[str, Any]:
    """Write ``program`` as a ``.tflite`` file at ``path``; returns what was done (JSON-able)."""
    from edgest_litert.flatbuffer import describe

    mode = pt2e_mode(program)
    t0 = time.perf_counter()
    failure: Exception | None = None
    with quiet() as log:
        import litert_torch

        try:
            program, scaled = without_alpha(program)
            module = program.module()
            rewrites = {"add_sub_alpha_scaled": scaled}
            edge = litert_torch.convert(module, tuple(example_inputs), quant_config=quant_config(mode))
            edge.export(str(path))
        except Exception as exc:  # noqa: BLE001 - the converter raises many kinds; explain after fd 2 is back
            failure = exc
    if failure is not None:
        raise Unsupported(explain(failure, log, litert_torch.__version__)) from failure
    return {
        "converter": f"litert-torch {litert_torch.__version__}",
        "pt2e_quantized": mode or "no",
        "convert_seconds": round(time.perf_counter() - t0, 2),
        "rewrites": {k: v for k, v in rewrites.items() if v},
        **describe(path),
    }


def explain(exc: BaseException, log: NativeLog, version: str) -> str:
    """One line: the aten op litert-torch has no lowering for and the source line it came from, else the
    converter's first MLIR error, else the exception's first line."""
    missing = _NO_LOWERING.search(str(exc))
    if missing:
        source = _SOURCE.search(str(exc))
        where = f" (from {Path(source.group(1)).name}:{source.group(2)} in {source.group(3)})" if source else ""
        return (f"target 'litert' cannot lower op {missing.group(1)}{where}: litert-torch {version} has no lowering "
                "for it; replace the op or choose another target")
    cause = next(iter(log.errors()), "") or _first_line(exc)
    return f"target 'litert' cannot lower the model: litert-torch {version} failed: {cause[:300]}; choose another target"


def _first_line(exc: BaseException) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:240]
