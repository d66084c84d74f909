"""What the float parts of an OpenVINO int8 IR should run at: f32, or the CPU plugin's default (bf16 on CPUs with it).

For each model: ``edgest.compile(model, "openvino", precision="int8")`` (kept in ``--out`` and reused when
its report is there), then the one IR compiled twice on the CPU plugin, once with
``INFERENCE_PRECISION_HINT`` f32 and once with no hint (what edgest's int8 IR records as ``"default"``),
timed in turns in one process, and compared with eager PyTorch on the accuracy check's seeded inputs.
Weights: the zoo's seeded init (``--weights MODEL=PATH`` for others). Prints the host's ISA and, per
model, p50 ms and SQNR dB for each way, and the plugin's reading of what each way executes.

    python bench/openvino_int8_float_parts.py --models vivit_fa_ti,squeezetime,lmuformer --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from edgest_openvino.device import PLUGIN_DEFAULT

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: the two ways compared: a name, and the IR hint the runner would compile with (PLUGIN_DEFAULT: no hint)
WAYS = (("f32", "f32"), ("plugin default", PLUGIN_DEFAULT))


def int8_ir(model: str, out: Path, weights: Path | None) -> Path:
    """The model's edgest OpenVINO int8 IR under ``out`` (compiled now unless a report is already there)."""
    import edgest

    run = out / f"{model}-openvino-int8"
    if not (run / "report.json").is_file():
        edgest.compile(model, "openvino", precision="int8", out_dir=run, weights=weights, latency=None, force=True)
    return run / "model.xml"


def measure(xml: Path, module: Any, shape: tuple[int, ...], threads: int, runs: int) -> dict[str, dict[str, Any]]:
    """p50 ms (timed in turns), SQNR dB against eager, and the plugin's execution facts, per way."""
    import openvino as ov
    import torch
    from edgest_openvino.device import compile_config, execution_facts

    from edgest.checks.accuracy import compare, seeded_inputs

    xs = [x[0] for x in seeded_inputs([shape], 8, 0)]
    with torch.no_grad():
        reference = [module(torch.from_numpy(x)).numpy() for x in xs]
    core, ways = ov.Core(), {}
    for name, hint in WAYS:
        compiled = core.compile_model(str(xml), "CPU", compile_config(hint, threads))  # as edgest's runner does
        request = compiled.create_infer_request()
        outputs = [request.infer([x], share_inputs=True)[0].copy() for x in xs]
        ways[name] = {"request": request, "wall": [], "facts": execution_facts(compiled),
                      "sqnr_db": compare(reference, outputs)["sqnr_db"]}
    for _ in range(runs):  # in turns: whatever changes on the host meanwhile changes for both ways
        for way in ways.values():
            t0 = time.perf_counter()
            way["request"].infer([xs[0]], share_inputs=True)
            way["wall"].append(time.perf_counter() - t0)
    return {name: {"p50_ms": statistics.median(w["wall"]) * 1e3, "sqnr_db": w["sqnr_db"], **w["facts"]}
            for name, w in ways.items()}


def main() -> int:
    from peers_lib.prepare import input_shape, load_module

    from edgest.host import cpu_model, isa_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vivit_fa_ti,squeezetime,lmuformer")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--weights", action="append", default=[], metavar="MODEL=PATH")
    parser.add_argument("--out", type=Path, default=Path("/tmp/edgest-ov-float-parts"))
    args = parser.parse_args()
    weights = {k: Path(v) for k, _, v in (w.partition("=") for w in args.weights)}
    print(f"host: {cpu_model()}, ISA: {isa_summary()}; {args.threads} thread(s), {args.runs} runs in turns\n")
    print("| model | way | p50 ms | SQNR dB | executes (compute layers) |\n|---|---|---|---|---|")
    for model in args.models.split(","):
        xml = int8_ir(model, args.out, weights.get(model))
        module = load_module(model, weights.get(model))
        for name, row in measure(xml, module, input_shape(model), args.threads, args.runs).items():
            layers = ", ".join(f"{k} {v}" for k, v in row["compute_layers_by_precision"].items())
            print(f"| {model} | {name} | {row['p50_ms']:.2f} | {row['sqnr_db']:.1f} | "
                  f"{row['execution_precision']} ({layers}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
