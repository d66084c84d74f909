"""Which ops of a streaming step program cost accuracy under NNCF int8 (the OpenVINO target's quantizer)?

Builds a ``--streaming`` plan (step module, streamed calibration steps, step inputs with realistic states),
quantises the captured step program with the OpenVINO target's own NNCFQuantizer, keeping a group of FX nodes
float each time (an NNCF ignored scope: the nodes are not module paths, so ``--quant-skip`` cannot name them),
and prints the single-step SQNR of ``out_t`` in eager PyTorch against the float step module.

    python bench/streaming_openvino_int8.py --weights lmu.pt                      # default groups
    python bench/streaming_openvino_int8.py --weights lmu.pt add_3+add_4+div matmul+matmul_1

Trained lmuformer_tiny (edgest train --model lmuformer_tiny --out lmu.pt --epochs 2 --train-clips 1024
--val-clips 50), AMD EPYC: all quantised 10.9 dB; every weighted op float 10.9 dB; the running-mean head
(add_3+add_4+div) float 30.5 dB.
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from edgest.checks.accuracy import compare
from edgest.plan import plan
from edgest.stages.build import build


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", default="lmuformer_tiny")
    ap.add_argument("--weights", required=True)
    ap.add_argument("groups", nargs="*", help="node names joined by '+' to keep float together (default: see below)")
    args = ap.parse_args()
    import edgest_openvino.quantizer as q

    built = build(plan(args.model, "openvino", streaming=True, precision="int8", weights=args.weights,
                       out_dir=tempfile.mkdtemp() + "/run"))
    example = tuple(torch.from_numpy(a) for a in built.inputs[0])
    program = torch.export.export(built.module, example, strict=False)
    nodes = [n for n in program.module().graph.nodes if n.op == "call_function"]
    weighted = [n.name for n in nodes if q._op(n) in q.WEIGHTED_OPS]
    groups = [g.split("+") for g in args.groups] or [[], weighted, *([w] for w in weighted),
                                                      [n.name for n in nodes if q._op(n) in ("add", "div", "cat")]]
    original = q.skipped_nodes
    for group in groups:
        q.skipped_nodes = lambda graph, skip, group=group: list(group)  # the quantizer's ignored scope
        try:
            done = q.NNCFQuantizer("int8").quantize_program(program, example, built.streaming.calibration, [])
        finally:
            q.skipped_nodes = original
        with torch.no_grad():
            outs = [done.program.module()(*(torch.from_numpy(a) for a in xs))[0].numpy() for xs in built.inputs]
        print(f"{'+'.join(group) or '(all quantised)'} float: out_t SQNR {compare(built.reference, outs)['sqnr_db']:.1f} dB",
              flush=True)


if __name__ == "__main__":
    main()
