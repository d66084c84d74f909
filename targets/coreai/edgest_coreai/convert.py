"""ExportedProgram → Core AI ``.aimodel`` with coreai-torch, at fp32, fp16 or bf16, and what the asset holds.

The converter takes a program decomposed with its own table (``coreai_torch.get_decomp_table()``:
torch's defaults minus the ops it lowers whole, SDPA among them). Precisions:

* ``fp32``: the program as captured.
* ``fp16``: coreai-opt's ``cast_fp32_to_fp16`` on the decomposed program (Apple's own pass: weights,
  inputs and ops to fp16, ops whose values would overflow fp16 kept in fp32 behind casts), then
  batch norms' statistics back at fp32 (:func:`_batch_norm_params_fp32`).
* ``bf16``: coreai-opt has no bf16 pass, so the program's module is cast to bfloat16 (its float32
  dtype arguments too) and captured again with bfloat16 inputs. Inference batch norm is decomposed
  to arithmetic first: the converter's own lowering of it types its statistics outputs bf16 where
  torch says fp32.

At every precision ``add``/``sub`` with ``alpha`` become ``add``/``sub`` of ``mul`` (:func:`edgest.graph_fixes.alpha_as_mul`):
coreai-torch drops ``alpha``. What was repaired is in the conversion's facts (``repairs``).

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

from edgest.graph_fixes import alpha_as_mul as _alpha_as_mul

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


_BATCH_NORM = "aten._native_batch_norm_legit_no_training.default"


def _batch_norm_params_fp32(fp32: dict[str, Any], cast: Any) -> list[str]:
    """Put the weight, bias, mean and variance of every inference batch norm of ``cast`` back at fp32 (from ``fp32``).

    coreai-torch lowers batch norm in fp32 (it upcasts fp16 inputs and parameters, computes, narrows
    the result), but the fp16 pass stores the parameters at fp16 first. A variance below fp16's
    smallest normal number (6.1e-5) is then a subnormal, and the host runtime loses it: with eps
    1e-6, a channel of variance 3e-5 and input 1 reads 179.6 in torch and 893.5 from the fp16 asset
    (variance + eps taken as 1.25e-6, 5x too much gain); 179.6 with the parameters at fp32. Such
    variances are common after a depthwise conv (EMOv2's stand-in weights: 3.9e-5). Returns the
    parameter names restored; a tensor any other op reads as well stays as the pass left it.
    """
    import torch

    names = {spec.arg.name: spec.target for spec in cast.graph_signature.input_specs if spec.target is not None}
    restored: list[str] = []
    for node in cast.graph.nodes:
        if node.op != "call_function" or str(node.target) != _BATCH_NORM:
            continue
        for arg in node.args[1:5]:
            target = names.get(getattr(arg, "name", None))
            if target is None or len(arg.users) != 1:
                continue
            store = cast.state_dict if target in cast.state_dict else cast.constants
            if fp32.get(target) is None or store[target].dtype != torch.float16:
                continue
            value = fp32[target].detach()
            store[target] = torch.nn.Parameter(value, requires_grad=False) if isinstance(store[target], torch.nn.Parameter) else value
            arg.meta["val"] = arg.meta["val"].to(torch.float32)
            restored.append(target)
    return restored


def _retype(module: Any, old: Any, new: Any) -> Any:
    """``module`` (a GraphModule) with every dtype argument ``old`` of its nodes made ``new`` (``.to(x.dtype)`` was
    captured as ``.to(torch.float32)``: the spiking LMUFormer's spikes would stay fp32 in a bf16 program)."""
    for node in module.graph.nodes:
        node.args = tuple(new if a is old else a for a in node.args)
        node.kwargs = {k: new if v is old else v for k, v in node.kwargs.items()}
    module.recompile()
    return module


def decompose(program: Any, example_inputs: tuple[Any, ...], precision: str,
              repairs: dict[str, Any] | None = None) -> Any:
    """The program the converter takes at ``precision``; ``program`` itself is left as it is.

    ``repairs`` (if given) gets what was rewritten around the converter's and runtime's faults:
    ``alpha_as_mul`` (:func:`edgest.graph_fixes.alpha_as_mul`) and, at fp16, ``batch_norm_fp32`` (:func:`_batch_norm_params_fp32`).
    """
    import torch
    from coreai_torch import get_decomp_table

    repairs = {} if repairs is None else repairs
    table = get_decomp_table()
    if precision == "bf16":
        table[torch.ops.aten._native_batch_norm_legit_no_training.default] = _batch_norm
        module = _retype(copy.deepcopy(program.module()).to(torch.bfloat16), torch.float32, torch.bfloat16)
        args = tuple(x.to(torch.bfloat16) if x.is_floating_point() else x for x in example_inputs)
        decomposed = torch.export.export(module, args, strict=False).run_decompositions(table)
    elif precision == "fp16":
        # a copy: the new program would share ``program``'s constants dict, whose entries the fp16 pass replaces.
        # Copied before decomposing: a copy of the decomposed program renames a placeholder called ``input``
        # (nn.Sequential's) to ``input_1`` while its signature keeps ``input``, and the converter misses it.
        decomposed = copy.deepcopy(program).run_decompositions(table)
    else:
        decomposed = program.run_decompositions(table)
    repairs["alpha_as_mul"] = _alpha_as_mul(decomposed)  # edgest.graph_fixes: coreai-torch drops alpha
    if precision == "fp16":
        from coreai_opt.casting import cast_fp32_to_fp16

        # the pass edits its input in place, replacing state entries with new tensors: the dicts' copies keep fp32.
        # The example inputs calibrate: ops whose values overflow fp16 on them stay fp32.
        fp32 = {**decomposed.constants, **decomposed.state_dict}
        cast = cast_fp32_to_fp16(decomposed, calibration_data=[tuple(example_inputs)])
        repairs["batch_norm_fp32"] = len(_batch_norm_params_fp32(fp32, cast))
        return cast
    return decomposed


def convert(program: Any, example_inputs: tuple[Any, ...], path: Path, precision: str) -> dict[str, Any]:
    """Write ``path`` (an ``.aimodel`` folder) from ``program``; the conversion's facts."""
    caught: list[str] = []
    seconds: dict[str, float] = {}
    repairs: dict[str, Any] = {}
    with quiet(caught):
        from coreai_torch import TorchConverter

        t0 = time.perf_counter()
        ready = decompose(program, example_inputs, precision, repairs)
        t1 = time.perf_counter()
        ai_program = TorchConverter(mode=TorchConverter.Mode.RELEASE).add_exported_program(ready).to_coreai()
        t2 = time.perf_counter()
        ai_program.save_asset(path)
        seconds = {"decompose": t1 - t0, "convert": t2 - t1, "save": time.perf_counter() - t2}
    return {**asset_facts(path), "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "converter_mode": "release", "repairs": repairs, "warnings": caught}


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
