"""ExportedProgram → Core AI ``.aimodel`` with coreai-torch, at fp32, fp16 or bf16, and what the asset holds.

The converter takes a program decomposed with its own table (``coreai_torch.get_decomp_table()``:
torch's defaults minus the ops it lowers whole, SDPA among them). Precisions:

* ``fp32``: the program as captured.
* ``fp16``: coreai-opt's ``cast_fp32_to_fp16`` on the decomposed program (Apple's own pass: weights,
  inputs and ops to fp16, ops whose values would overflow fp16 kept in fp32 behind casts).
* ``bf16``: coreai-opt has no bf16 pass, so the program's module is cast to bfloat16 and captured
  again with bfloat16 inputs. Inference batch norm is decomposed to arithmetic first: the
  converter's own lowering of it types its statistics outputs bf16 where torch says fp32.

coreai-torch, coreai-opt and torch are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import copy
import io
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

#: the float precisions an asset can be built at (int8 is fp32 plus the quantizer's ops)
PRECISIONS = ("fp32", "fp16", "bf16")


@contextlib.contextmanager
def quiet(caught: list[str]) -> Any:
    """Silence coreai-torch's progress bar (stdout) and collect the distinct warnings raised meanwhile."""
    with warnings.catch_warnings(record=True) as seen, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        yield
    for w in seen:
        text = str(w.message).strip().splitlines()[0][:200] if str(w.message).strip() else w.category.__name__
        if text not in caught:
            caught.append(text)


def _batch_norm(input: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any, momentum: float,
                eps: float) -> tuple[Any, Any, Any]:
    """Inference batch norm as arithmetic in the input's dtype (statistics outputs are unused after capture)."""
    import torch

    shape = [1, -1] + [1] * (input.dim() - 2)
    out = (input - running_mean.view(shape)) * torch.rsqrt(running_var + eps).view(shape)
    if weight is not None:
        out = out * weight.view(shape)
    if bias is not None:
        out = out + bias.view(shape)
    return out, input.new_zeros(0), input.new_zeros(0)


def decompose(program: Any, example_inputs: tuple[Any, ...], precision: str) -> Any:
    """The program the converter takes at ``precision``; ``program`` itself is left as it is."""
    import torch
    from coreai_torch import get_decomp_table

    table = get_decomp_table()
    if precision == "bf16":
        table[torch.ops.aten._native_batch_norm_legit_no_training.default] = _batch_norm
        module = copy.deepcopy(program.module()).to(torch.bfloat16)
        args = tuple(x.to(torch.bfloat16) if x.is_floating_point() else x for x in example_inputs)
        return torch.export.export(module, args, strict=False).run_decompositions(table)
    decomposed = program.run_decompositions(table)
    if precision == "fp16":
        from coreai_opt.casting import cast_fp32_to_fp16

        # the example inputs as calibration: ops whose values overflow fp16 there stay fp32 (the pass edits its input)
        return cast_fp32_to_fp16(copy.deepcopy(decomposed), calibration_data=[tuple(example_inputs)])
    return decomposed


def convert(program: Any, example_inputs: tuple[Any, ...], path: Path, precision: str) -> dict[str, Any]:
    """Write ``path`` (an ``.aimodel`` folder) from ``program``; the conversion's facts."""
    caught: list[str] = []
    seconds: dict[str, float] = {}
    with quiet(caught):
        from coreai_torch import TorchConverter

        t0 = time.perf_counter()
        ready = decompose(program, example_inputs, precision)
        t1 = time.perf_counter()
        ai_program = TorchConverter(mode=TorchConverter.Mode.RELEASE).add_exported_program(ready).to_coreai()
        t2 = time.perf_counter()
        ai_program.save_asset(path)
        seconds = {"decompose": t1 - t0, "convert": t2 - t1, "save": time.perf_counter() - t2}
    return {**asset_facts(path), "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "converter_mode": "release", "warnings": caught}


def _pairs(items: Any) -> dict[str, Any]:
    """The summary's ``[(name, value), ...]`` lists as a dict (its string forms ``"(a, 1)"`` too)."""
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, str):
            name, _, value = item.strip("()").rpartition(", ")
            out[name] = int(value) if value.isdigit() else value
        else:
            out[str(item[0])] = item[1]
    return out


def asset_facts(path: Path, top: int = 10) -> dict[str, Any]:
    """What ``AIModelAsset.summary()`` says of the saved asset: functions, interface, op counts, types, files."""
    import importlib.metadata

    from coreai.authoring import AIModelAsset

    from edgest.fsio import sha256_of

    summary = AIModelAsset.load(path).summary()
    ops = Counter({str(k): int(v) for k, v in _pairs(summary.operation_distribution).items()})
    functions = list(summary.function_names)
    return {
        "coreai_core": importlib.metadata.version("coreai-core"),
        "coreai_torch": importlib.metadata.version("coreai-torch"),
        "functions": functions,
        "interface": {f: {"inputs": _pairs(summary.function_inputs(f)), "outputs": _pairs(summary.function_outputs(f))}
                      for f in functions},
        "ops": {"total": sum(ops.values()), "non_constant": sum(v for k, v in ops.items() if k != "constant"),
                "types": len(ops), "top": dict(ops.most_common(top))},
        "compute_types": list(summary.compute_types),
        "storage_types": _pairs(summary.storage_types),
        "files": sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()),
        "asset_bytes": sum(p.stat().st_size for p in path.rglob("*") if p.is_file()),
        "sha256_tree": sha256_of(path),
    }
