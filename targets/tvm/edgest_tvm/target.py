"""TVM target: ``from_exported_program`` → Relax → ``tvm.compile``-style build → ``model.so``, run by the Relax VM.

TVM is imported inside the methods, so this module is cheap to import and a missing TVM shows
up as "unavailable", not as a broken CLI. The Relax VM runner is :mod:`edgest_tvm.device`,
which device bundles run too.

Options (all JSON-able; they cross into the check's child process):

``tune_trials`` (int, default 0)
    MetaSchedule trial budget for this compile; 0 compiles with the default schedules only.
    On the command line: ``--target-option tune_trials=64``. ``EDGEST_TVM_TUNE_TRIALS`` is
    read only as a fallback when the option is not given.
``tuning_db`` (str, default: next to the artifact)
    Where the MetaSchedule JSON database lives. By default it is ``tuning/`` in the run folder,
    and a ``tuning/`` already in the run folder being replaced (``--force``) is reused, so a
    recompile does not tune again. Given a path (or ``EDGEST_TVM_DB`` as a fallback), that
    folder is a database shared by every run and model, one sub-folder per LLVM target, and
    the records this artifact uses are copied next to it (``tuning/``). Kernels already tuned
    in the database are not tuned again. Only read when ``tune_trials`` > 0.
``tvm_target`` ("host" or "aarch64", default "host")
    ``aarch64`` cross-compiles for 64-bit Arm Linux with NEON (``mtriple`` aarch64-linux-gnu)
    and links with ``aarch64-linux-gnu-g++``. On an x86_64 host the accuracy check runs that
    library with TVM's aarch64 runtime under ``qemu-aarch64`` (sysroot from
    ``make aarch64-sysroot``; see :mod:`edgest_tvm.emulated`); latency is *not run*
    (emulated: meaningless). Without the sysroot both checks are *not run*, naming the fix.
``schedule`` ("edgest", "dlight" or "none", default "edgest")
    Default schedules for kernels without tuning records: edgest's register-tiling rule
    (see :mod:`edgest_tvm.schedule`), TVM's ``dlight.cpu`` rules only, or none (TVM's
    default pipeline: naive loop nests) — the last two for comparison.
``tune_threads`` (int, default 1)
    Threads the tuning runner measures with (edgest's checks default to one thread).
``layout`` ("NCHW" or "NHWC", default "NCHW")
    ``NHWC`` converts 2-D convolutions to NHWC/HWIO before legalisation (2x faster on the
    tiny zoo models here, 20 % slower on full-size SqueezeTime, so not the default).

Precision: fp32 only. int8: not supported by TVM 0.27 (its PyTorch frontend imports float
graphs; a quantized ``ExportedProgram`` has no converter), so ``precisions`` is ``("fp32",)``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgest import BadInput, TargetUnavailable
from edgest.capture import op_origin
from edgest.graph_fixes import without_alpha
from edgest.target import Lowered, Target
from edgest_tvm.device import TvmRunner

if TYPE_CHECKING:
    import torch

    from edgest.coverage import Coverage
    from edgest_tvm.emulated import QemuRunner

LOCAL_DB = ""  # the tuning_db default: tuning/ next to the artifact

#: option → (allowed values or type, default)
OPTIONS: dict[str, tuple[Any, Any]] = {
    "tune_trials": (int, 0),
    "tuning_db": (str, LOCAL_DB),
    "tvm_target": (("host", "aarch64"), "host"),
    "schedule": (("edgest", "dlight", "none"), "edgest"),
    "tune_threads": (int, 1),
    "layout": (("NCHW", "NHWC"), "NCHW"),
}

_ELF_MACHINE = {0x3E: "x86_64", 0xB7: "aarch64", 0x28: "arm", 0xF3: "riscv"}


def elf_machine(path: Path) -> str:
    """The architecture an ELF shared library is built for ("x86_64", "aarch64", …)."""
    with open(path, "rb") as fh:
        head = fh.read(20)
    if head[:4] != b"\x7fELF":
        return "unknown"
    order = "little" if head[5] == 1 else "big"
    code = int.from_bytes(head[18:20], order)
    return _ELF_MACHINE.get(code, f"elf-machine-{code:#x}")


class TvmTarget(Target):
    """Apache TVM 0.27: Relax from the ExportedProgram, scheduled (default rules or MetaSchedule), LLVM, ``model.so``."""

    name = "tvm"
    artifact_format = "so"
    description = ("Apache TVM 0.27 (Relax + LLVM, default CPU schedules or MetaSchedule tuning), Relax VM CPU; "
                   "fp32 only (int8: not supported by TVM 0.27)")
    requires = ("tvm", "tvm_ffi")
    toolchain = ("apache-tvm", "apache-tvm-ffi")
    install_hint = "pip install -e targets/tvm"
    device_runner = "edgest_tvm.device"
    runtime_requirements = (("numpy", "apache-tvm=={apache-tvm}", "apache-tvm-ffi=={apache-tvm-ffi}"),)
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)

    option_table = OPTIONS

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # checks names, allowed values and types against OPTIONS
        for key, value in options.items():
            if OPTIONS[key][0] is int and value < (1 if key == "tune_threads" else 0):
                raise BadInput(f"tvm option {key} must be >= {1 if key == 'tune_threads' else 0}, not {value}")

    def option(self, key: str) -> Any:
        if key in self.options:
            return self.options[key]
        if key == "tune_trials" and os.environ.get("EDGEST_TVM_TUNE_TRIALS"):
            try:
                return max(0, int(os.environ["EDGEST_TVM_TUNE_TRIALS"]))
            except ValueError:
                raise BadInput(f"EDGEST_TVM_TUNE_TRIALS must be an integer, not {os.environ['EDGEST_TVM_TUNE_TRIALS']!r}") from None
        if key == "tuning_db" and os.environ.get("EDGEST_TVM_DB"):
            return os.environ["EDGEST_TVM_DB"]
        return super().option(key)

    def ensure_available(self) -> None:
        super().ensure_available()
        if self.option("tvm_target") == "aarch64":
            from edgest_tvm.compiler import check_cross_toolchain

            check_cross_toolchain()

    def lower(self, program: torch.export.ExportedProgram, example_inputs: tuple[Any, ...], out_dir: Path) -> Lowered:
        self.ensure_available()
        import tvm

        from edgest_tvm import compiler

        kind = self.option("tvm_target")
        trials = self.option("tune_trials")
        schedule = self.option("schedule")
        spec = compiler.target_spec(kind)
        target = tvm.target.Target(spec)
        aten = Counter(str(n.target) for n in program.graph.nodes if n.op == "call_function")

        t0 = time.perf_counter()
        program, alpha_fixed = without_alpha(program)  # the Relax frontend drops add/sub's alpha (edgest.graph_fixes)
        mod = compiler.import_program(program, lambda op: op_origin(program, op))
        t1 = time.perf_counter()
        fused = compiler.fuse(mod, target, self.option("layout"))
        tuned: dict[str, Any] | None = None
        database = None
        if trials > 0 and kind != "host":
            raise TargetUnavailable(
                f"target 'tvm': tuning (tune_trials={trials}) measures kernels on the machine they are built for; "
                f"tvm_target='{kind}' would need a MetaSchedule RPC runner on the device (not set up): use tune_trials=0"
            )
        shared = self.option("tuning_db")
        if trials > 0:
            if shared:
                root, per_target = Path(os.path.expanduser(shared)), True
            else:
                root, per_target = out_dir / "tuning", False
                compiler.reuse_local_db(out_dir, root)
            database, tuned = compiler.tune(fused, target, trials, root, self.option("tune_threads"), per_target)
        t2 = time.perf_counter()
        ex, stats = compiler.build(fused, target, schedule, database)
        path = out_dir / "model.so"
        compiler.export(ex, path, cross=kind != "host")
        t3 = time.perf_counter()
        if database is not None and tuned is not None:
            workloads = tuned.pop("workloads")
            if shared:
                tuned["records_copied"] = compiler.copy_records(database, workloads, out_dir / "tuning")
                tuned["copied_to"] = "tuning/"
            else:
                tuned["db"] = "tuning/"

        details: dict[str, Any] = {
            "tvm_target": kind,
            "target": str(target),
            "target_spec": compiler.jsonable(target.export()),
            "target_features": compiler.features(target),
            "vector_lanes_fp32": compiler.vector_lanes(target),
            "host_arch": platform.machine(),
            "library_arch": elf_machine(path),
            "schedule": schedule,
            "layout": self.option("layout"),
            "ops": sum(aten.values()),
            "distinct_ops": len(aten),
            **stats,
            "tuned": tuned or {"trials": 0},
            **({"repairs": {"alpha_as_mul": alpha_fixed}} if alpha_fixed else {}),
            "seconds": {"import": round(t1 - t0, 2), "tune": round(t2 - t1, 2) if tuned else 0.0,
                        "build": round(t3 - t2, 2)},
        }
        (out_dir / "tvm.json").write_text(json.dumps(details, indent=2))
        return Lowered(path, details)

    def load(self, path: Path, threads: int) -> TvmRunner | QemuRunner:
        arch = elf_machine(path)
        host = platform.machine()
        if arch == "unknown":
            raise BadInput(f"'{path.name}' is not a TVM library (no ELF header); give the model.so that "
                           "`edgest compile --target tvm` wrote")
        if arch == "aarch64" and host == "x86_64":
            from edgest_tvm.emulated import QemuRunner

            return QemuRunner(path, threads)  # TargetUnavailable naming `make aarch64-sysroot` when not set up
        if arch != host:
            raise TargetUnavailable(f"target 'tvm': the {arch} library cannot run on this {host} host; run it on the device")
        Target.ensure_available(self)  # the runtime only: no cross linker needed to run
        return TvmRunner(path, threads)

    def intermediates(self, path: Path, program: torch.export.ExportedProgram, inputs: Any, probes: Any) -> dict[str, Any]:
        """Module outputs from the program built again, untuned, with them as extra outputs (:mod:`edgest.debug.relower`):
        a compiled library keeps no per-layer tensors, and tuning changes schedules, not numerics."""
        from edgest.debug.relower import relowered

        return relowered(type(self)(**{**self.options, "tune_trials": 0}), program, inputs, probes)

    def coverage(self, program: torch.export.ExportedProgram) -> Coverage:
        """Ops TVM's ExportedProgram importer converts, after its core ATen decomposition (:mod:`edgest_tvm.coverage`)."""
        self.ensure_available()
        from edgest_tvm.coverage import coverage

        return coverage(program)
