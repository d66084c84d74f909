"""OpenVINO (NNCF) int8 of a streaming step program: what the state-loop rule and min-max ranges buy.

Builds a ``--streaming`` plan (step module, streamed calibration steps, step inputs with realistic states),
quantises the captured step program with the OpenVINO target's own NNCFQuantizer in three ways, and prints, in
eager PyTorch against the parallel model, the single-step SQNR of ``out_t`` and the streaming check's figures
(worst-step SQNR, top-1 over steps) over the run's sequences with the quantised step's own state fed back:

* ``whole-input``: as a whole-input program (``states`` = 0): NNCF's default ranges, nothing kept float;
* ``min-max``: a step program's min-max activation ranges, the state loop quantised;
* ``state rule``: what ``--streaming --precision int8`` does (min-max, and the state loop float).

Extra groups of FX node names (joined by '+') are kept float on top of the rule, one run each.

    python bench/streaming_openvino_int8.py --weights lmu.pt
    python bench/streaming_openvino_int8.py --weights lmu.pt linear+matmul_1

Trained lmuformer_tiny (edgest train --model lmuformer_tiny --out lmu.pt --epochs 2 --train-clips 1024
--val-clips 50), AMD EPYC: whole-input 10.9 dB single step, 7.6 dB worst step, 89.6 %; min-max 29.6 / 19.0 dB,
95.9 %; state rule 45.3 / 29.5 dB, 99.1 %.
"""

from __future__ import annotations

import argparse
import tempfile
from unittest import mock

import numpy as np
import torch

from edgest.checks.accuracy import compare
from edgest.plan import plan
from edgest.stages.build import build
from edgest.streaming.stepping import stream_metrics, stream_sequence


class _Eager:
    """A step runner (edgest.streaming.stepping.StepRunner) over a quantised FX module."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in self.module(*(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs))]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", default="lmuformer_tiny")
    ap.add_argument("--weights", required=True)
    ap.add_argument("groups", nargs="*", help="FX node names joined by '+' to keep float on top of the rule")
    args = ap.parse_args()
    import edgest_openvino.quantizer as q

    built = build(plan(args.model, "openvino", streaming=True, precision="int8", weights=args.weights,
                       out_dir=tempfile.mkdtemp() + "/run"))
    example = tuple(torch.from_numpy(a) for a in built.inputs[0])
    program = torch.export.export(built.module, example, strict=False)
    data, states = built.streaming, len(example) - 1
    runs = [("whole-input", 0, None), ("min-max", states, []), ("state rule", states, None)]
    runs += [(g, states, g.split("+")) for g in args.groups]
    for name, count, extra in runs:
        quantizer = q.NNCFQuantizer("int8")
        quantizer.states = count
        loop = q.state_loop if extra is None else (lambda g, s, extra=extra: list(extra) + (q.state_loop(g, s) if extra else []))
        with mock.patch.object(q, "state_loop", loop):
            done = quantizer.quantize_program(program, example, data.calibration, [])
        runner = _Eager(done.program.module())
        single = compare(built.reference, [runner.run(xs)[0] for xs in built.inputs])["sqnr_db"]
        m = stream_metrics(data.reference, [stream_sequence(runner, s, data.init) for s in data.sequences])
        print(f"{name}: single step {single:.1f} dB; streaming worst step {m['sqnr_db']:.1f} dB, "
              f"top-1 {m['top1_agreement']:.1%}, drift {m['drift_db']:.1f} dB", flush=True)


if __name__ == "__main__":
    main()
