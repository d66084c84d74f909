"""PT2E pattern capture through Dynamo (torchao's ``strict=True``) against edgest's non-strict capture.

For each quantizer, one ``prepare_pt2e`` of a small conv/BN/linear model, in a fresh process; every pattern
the quantizer's annotator captures is captured both ways, timed, and the two graphs are compared
(``str(graph)``: ops, arguments, node names). Prints, per quantizer: patterns, seconds strict, seconds
non-strict, how many graphs are identical; exits 1 when one differs. The figures behind
:mod:`edgest.quantize.patterns`.

Run: ``python bench/pattern_capture.py [--quantizers coreml,xnnpack]`` (about two minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

#: quantizer → (module holding the capture function, its name, code making the quantizer)
QUANTIZERS = {
    "coreml": ("executorch.backends.apple.coreml.quantizer._coreml_quantizer_utils", "_get_aten_graph_module",
               ("from edgest_coreml.quantizer import CONFIG\n"
                "from coremltools.optimize.torch.quantization.quantization_config import LinearQuantizerConfig\n"
                "from executorch.backends.apple.coreml.quantizer import CoreMLQuantizer\n"
                "quantizer = CoreMLQuantizer(LinearQuantizerConfig.from_dict({'global_config': CONFIG}))")),
    "xnnpack": ("executorch.backends.xnnpack.quantizer.xnnpack_quantizer_utils", "_get_aten_graph_module_for_pattern",
                ("from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, "
                 "get_symmetric_quantization_config\n"
                 "quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))")),
}

_CHILD = """
import importlib, json, time, warnings
warnings.simplefilter("ignore")
import torch
from torch import nn
from edgest.quantize.patterns import pattern_graph
utils = importlib.import_module({module!r})
original, seen = getattr(utils, {attr!r}), []

def both(pattern, example_inputs, is_cuda=False, **kwargs):
    t = time.perf_counter(); strict = original(pattern, example_inputs, is_cuda, **kwargs); s = time.perf_counter() - t
    t = time.perf_counter(); loose = pattern_graph(pattern, example_inputs, is_cuda, **kwargs); n = time.perf_counter() - t
    seen.append((s, n, str(strict.graph) == str(loose.graph)))
    return strict

setattr(utils, {attr!r}, both)
{make}

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        return self.fc((y + y.sigmoid()).mean((2, 3)))

from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e
x = torch.randn(1, 3, 8, 8)
prepare_pt2e(torch.export.export(Model().eval(), (x,), strict=False).module(), quantizer)
print(json.dumps({{"patterns": len(seen), "strict_s": sum(s for s, _, _ in seen),
                  "non_strict_s": sum(n for _, n, _ in seen), "identical": sum(e for _, _, e in seen)}}))
"""


def main() -> None:
    from edgest.host import cpu_model, isa_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quantizers", default=",".join(QUANTIZERS))
    args = parser.parse_args()
    print(f"host: {cpu_model()}, ISA: {isa_summary()}")
    print(f"{'quantizer':<10} {'patterns':>8} {'strict s':>9} {'non-strict s':>13} {'identical':>10}")
    differ = False
    for name in args.quantizers.split(","):
        module, attr, make = QUANTIZERS[name]
        done = subprocess.run([sys.executable, "-c", _CHILD.format(module=module, attr=attr, make=make)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{name:<10} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        differ |= row["identical"] != row["patterns"]
        print(f"{name:<10} {row['patterns']:>8} {row['strict_s']:>9.1f} {row['non_strict_s']:>13.1f} "
              f"{row['identical']:>6}/{row['patterns']}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
