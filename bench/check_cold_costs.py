"""Where a cold ``edgest check`` spends its time beyond each toolchain's own answer: the measurements behind issue 19.

Prints, for one model (default ``squeezetime``):

1. each toolchain's import seconds in a fresh process that has already imported torch, edgest, Inductor's
   lowerings and edgest's plugins (what ``edgest check`` has before forking its children); coremltools also
   without the plugins, i.e. without :mod:`edgest_coreml.lean_import`;
2. how long ExecuTorch's edge-dialect table (``edge.yaml``) takes to parse, and with which ruamel loader;
3. ``torch.export.save``/``load`` seconds of the captured program, and whether ``pickle`` can copy it there and
   back (what sending the program to children started before the capture would cost);
4. a target's ``coverage`` seconds asked alone and asked after a sibling in the same process (targets that
   share a toolchain could share a child);
5. TVM's runtime imported in a fresh process without torch (what a check process does), with the TVM plugin
   imported first (its :mod:`edgest.lean_import` hides torch from ``import tvm``) and without it.

Run: ``python bench/check_cold_costs.py [--model squeezetime]`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

IMPORTS = {
    "coremltools": "coremltools, coremltools.converters.mil.frontend.torch",
    "tvm": "tvm, tvm.relax.frontend.torch",
    "litert": "litert_torch",
    "executorch": "executorch.exir, executorch.backends.xnnpack.partition.xnnpack_partitioner",
    "onnxsim": "onnxsim",
    "onnx stack": "onnx, onnxruntime, torch.onnx._internal.exporter._core",
    "openvino": "openvino, openvino.frontend.pytorch",
}
#: (first, then): the second target asked in the same process after the first
PAIRS = (("onnx", "tensorrt"), ("coreml", "coreai"))

_IMPORT = """
import time, torch, edgest, torch._inductor.lowering
from edgest.plugins import get_registry
{plugins}
t = time.perf_counter()
import {modules}
print(round(time.perf_counter() - t, 2))
"""

_YAML = """
import time
from importlib import resources
from ruamel.yaml import YAML
import executorch.exir.dialects.edge as edge
text = resources.read_text(edge, "edge.yaml", encoding="utf-8")
yaml = YAML(typ="safe")
t = time.perf_counter()
yaml.load(text)
print(round(time.perf_counter() - t, 2), yaml.Parser.__name__)
"""

_SERIALISE = """
import io, pickle, sys, time, torch
from edgest.preflight import capture_for_check
program = capture_for_check(sys.argv[1])[1]
buf = io.BytesIO()
t = time.perf_counter(); torch.export.save(program, buf); save = time.perf_counter() - t
buf.seek(0)
t = time.perf_counter(); torch.export.load(buf); load = time.perf_counter() - t
try:
    t = time.perf_counter(); pickle.loads(pickle.dumps(program))
    pickled = f"pickle round trip {time.perf_counter() - t:.2f} s"
except Exception as exc:
    pickled = f"pickle round trip fails: {type(exc).__name__}: {str(exc)[:80]}"
print(f"save {save:.2f} s, load {load:.2f} s, {buf.getbuffer().nbytes / 1e6:.0f} MB; {pickled}")
"""

_ASK = """
import sys, time, torch
torch.set_num_threads(1)
from edgest.plugins import get_registry
from edgest.coverage_workers import preload
from edgest.preflight import ask, capture_for_check, target_for_check
program = capture_for_check(sys.argv[1])[1]
preload()
for name in sys.argv[2].split(","):
    target = target_for_check(get_registry().target(name), None)
    t = time.perf_counter()
    status = target if isinstance(target, str) else ask(target, program, None).status
    print(name, round(time.perf_counter() - t, 2), status)
"""


_RUNTIME_IMPORT = """
import sys, time
if sys.argv[1] == "plugin":
    import edgest_tvm
t = time.perf_counter()
import tvm, tvm.runtime
print(round(time.perf_counter() - t, 2), "s, torch imported:", "torch" in sys.modules)
"""


def _run(code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    lines = proc.stdout.strip().splitlines()
    return "\n".join(lines) if proc.returncode == 0 and lines else f"failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"


def main() -> None:
    from edgest.host import cpu_model, isa_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="squeezetime")
    args = parser.parse_args()
    print(f"host: {cpu_model()}, {os.cpu_count()} cores, ISA: {isa_summary()}; load {os.getloadavg()[0]:.1f}", flush=True)
    print("1. import seconds after torch, edgest, Inductor's lowerings and edgest's plugins:")
    for name, modules in IMPORTS.items():
        print(f"   {name}: {_run(_IMPORT.format(modules=modules, plugins='get_registry()'))}", flush=True)
    bare = _run(_IMPORT.format(modules=IMPORTS["coremltools"], plugins=""))
    print(f"   coremltools without edgest_coreml's lean import (edgest_coreml/lean_import.py): {bare}", flush=True)
    print(f"2. ExecuTorch edge.yaml parse (seconds, loader): {_run(_YAML)}", flush=True)
    print(f"3. {args.model} program: {_run(_SERIALISE, args.model)}", flush=True)
    print("4. coverage seconds, alone and after a sibling in the same process:")
    for first, then in PAIRS:
        alone = _run(_ASK, args.model, then).replace("\n", "; ")
        after = _run(_ASK, args.model, f"{first},{then}").replace("\n", "; ")
        print(f"   {then} alone: {alone}\n   {first} then {then}: {after}", flush=True)
    print(f"5. import tvm without torch: with edgest_tvm's lean import {_run(_RUNTIME_IMPORT, 'plugin')}; "
          f"without {_run(_RUNTIME_IMPORT, 'bare')}", flush=True)


if __name__ == "__main__":
    main()
