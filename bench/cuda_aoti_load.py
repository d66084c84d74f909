"""Whether AOTInductor packages load with this torch build, each way tried in its own process.

A torch 2.11.0+cu130 image segfaulted while loading every AOTInductor package, so this compiles one small
package (a convolution, a ReLU and a linear layer: Triton kernels and an extern call on a GPU) and runs each
step of loading it in a fresh ``python -X faulthandler`` process, so that a crash costs only that step and
its Python stack is kept:

- ``metadata``: the package loader's metadata read (``AOTIModelPackageLoader.load_metadata_from_package``);
- ``device-info``: ``torch._inductor.codecache.get_device_information``, which the loader calls first;
- ``torch``: ``torch._inductor.aoti_load_package`` as a user calls it, then the model;
- ``package`` / ``package-single``: edgest's :func:`edgest_cuda.device.load_package` (the C++ runtime made
  global first, no host-ISA probe), multi-threaded / ``run_single_threaded``, then the model;
- ``package-graph``: the single-threaded runner captured in a CUDA graph and replayed (CUDA only);
- ``torch-preload``: ``torch`` with the C++ compiler's ``libstdc++`` preloaded (``LD_PRELOAD``).

Each output is compared with eager's; each step lists the ``libstdc++`` files its process has mapped, and
the run starts with Inductor's C++ compiler and the newest ``GLIBCXX`` of each ``libstdc++`` involved. The
last line, ``loads: yes`` or ``loads: no``, says whether edgest's loader worked, for
``bench/cuda_gpu_all.sh``. Runs on the CPU too (``--device cpu``; the CUDA-graph step is skipped).

``python bench/cuda_aoti_load.py [--device cuda] [--workdir DIR] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

STEPS = ("metadata", "device-info", "torch", "package", "package-single", "package-graph", "torch-preload")


def _model():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 14 * 14, 10)).eval()


def compile_package(device: str, folder: Path) -> Path:
    """The small model's package for ``device`` in ``folder``, with its input and eager output beside it."""
    import torch

    x = torch.randn(2, 3, 16, 16, device=device)
    module = _model().to(device)
    with torch.no_grad():
        torch.save({"x": x.cpu(), "y": module(x).cpu()}, folder / "io.pt")
        program = torch.export.export(module, (x,))
        path = torch._inductor.aoti_compile_and_package(program, package_path=str(folder / "probe.pt2"),
                                                        inductor_configs={"freezing": True})
    return Path(path)


def child(step: str, package: Path, device: str) -> str:
    """Run one step in this process; a line saying what it gave (raises on failure)."""
    import torch
    from edgest_cuda.device import capture_cuda_graph, load_package

    if step == "metadata":
        return str(torch._C._aoti.AOTIModelPackageLoader.load_metadata_from_package(str(package), "model"))
    if step == "device-info":
        from torch._inductor.codecache import get_device_information

        return str(get_device_information(device))
    io = torch.load(package.parent / "io.pt")
    x = io["x"].to(device)
    print("libstdc++ mapped:", mapped_libstdcxx(), flush=True)
    if step.startswith("torch"):
        model = torch._inductor.aoti_load_package(str(package))
    else:
        model = load_package(package, torch.device(device), single_threaded=step != "package")
    with torch.inference_mode():
        if step == "package-graph":
            graph, outs = capture_cuda_graph(lambda xs: list(model(*xs)), [x])
            graph.replay()
        else:
            outs = model(x)
        out = (outs[0] if isinstance(outs, (list, tuple)) else outs).cpu()
    err = (out - io["y"]).abs().max().item()
    if err > 1e-3:
        raise RuntimeError(f"output differs from eager by {err:.3g}")
    return f"output matches eager (max abs {err:.2e})"


def mapped_libstdcxx() -> list[str]:
    """The libstdc++ files this process has mapped."""
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps if "libstdc++" in line})


def compiler_facts() -> dict[str, str]:
    """Inductor's C++ compiler, its version and libstdc++, and the newest GLIBCXX of each libstdc++ involved."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        cxx = get_cpp_compiler()
    except Exception as exc:  # noqa: BLE001 - a fact that cannot be read is reported, not fatal
        return {"cxx": f"unknown ({type(exc).__name__}: {exc})"}
    facts = {"cxx": cxx, "version": _first_line(_stdout([cxx, "--version"])),
             "cxx_libstdcxx": os.path.realpath(_first_line(_stdout([cxx, "-print-file-name=libstdc++.so.6"])))}
    for lib in {facts["cxx_libstdcxx"], *mapped_libstdcxx()}:
        versions = [v for v in _stdout(["strings", lib]).split() if v.startswith("GLIBCXX_3.4.")]
        facts[f"newest GLIBCXX in {os.path.realpath(lib)}"] = max(versions, key=lambda v: int(v.rsplit(".", 1)[1]),
                                                                   default="?")
    return facts


def _stdout(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({exc})"


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def step_env(step: str, cxx_libstdcxx: str | None) -> dict[str, str]:
    """The environment a step's process runs in (``torch-preload``: the compiler's libstdc++ preloaded)."""
    env = dict(os.environ)
    if step == "torch-preload" and cxx_libstdcxx:
        env["LD_PRELOAD"] = cxx_libstdcxx
    return env


def _outcome(proc: subprocess.CompletedProcess) -> str:
    from edgest.checks.isolated import signal_name

    if proc.returncode == 0:
        return "ok"
    if proc.returncode < 0:
        return f"crashed ({signal_name(proc.returncode)})"
    return f"failed (exit {proc.returncode})"


def probe(step: str, package: Path, device: str, timeout_s: float, cxx_libstdcxx: str | None) -> dict[str, str]:
    """``step`` run in a fresh process; its outcome, last output line and faulthandler's stack, if any."""
    cmd = [sys.executable, "-X", "faulthandler", __file__, "--child", step, "--package", str(package),
           "--device", device]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False,
                              env=step_env(step, cxx_libstdcxx))
    except subprocess.TimeoutExpired:
        return {"step": step, "outcome": f"timed out after {timeout_s:.0f} s", "detail": "", "stack": ""}
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    stack = [ln for ln in proc.stderr.splitlines() if ln.startswith(("Fatal Python", "  File", "Current thread"))]
    mapped = [ln for ln in lines if ln.startswith("libstdc++ mapped:")]
    ending = [ln for ln in lines if not ln.startswith(("libstdc++ mapped:", "Extension modules:"))]
    return {"step": step, "outcome": _outcome(proc), "seconds": f"{time.monotonic() - t0:.1f}",
            "detail": (ending or [""])[-1][:300], "libstdcxx": (mapped or [""])[0], "stack": "\n".join(stack[:12])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda where torch sees a GPU)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the package here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--timeout-s", type=float, default=120.0, help="per step")
    ap.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    ap.add_argument("--package", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.child:
        print(f"{args.child}: {child(args.child, args.package, device)}", flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="edgest-aoti-probe-") as tmp:
        folder = args.workdir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        package = compile_package(device, folder)
        print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {device}: package compiled in "
              f"{time.monotonic() - t0:.1f} s", flush=True)
        facts = compiler_facts()
        print("\n".join(f"  {k}: {v}" for k, v in facts.items()), flush=True)
        steps = [s for s in STEPS if device == "cuda" or s != "package-graph"]
        with ThreadPoolExecutor(len(steps)) as pool:
            results = list(pool.map(lambda s: probe(s, package, device, args.timeout_s, facts.get("cxx_libstdcxx")),
                                    steps))
    for r in results:
        print(f"{r['step']:>16}: {r['outcome']:<18} {r.get('seconds', '-'):>6} s  {r['detail']}", flush=True)
        if r.get("libstdcxx"):
            print(f"    {r['libstdcxx']}")
        if r["stack"]:
            print("    " + r["stack"].replace("\n", "\n    "))
    loads = any(r["step"] == "package" and r["outcome"] == "ok" for r in results)
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "device": device,
                                         "compiler": facts, "steps": results, "loads": loads}, indent=2))
    print(f"loads: {'yes' if loads else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
