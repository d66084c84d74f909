"""TVM 0.27 side of the target: host/cross targets, import, default schedules, MetaSchedule tuning.

Everything here imports ``tvm`` inside functions; :mod:`edgest_tvm.target` stays importable
without TVM.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgest import TargetUnavailable, Unsupported

CROSS_CXX = "aarch64-linux-gnu-g++"
CROSS_HINT = "apt-get install g++-aarch64-linux-gnu"
_UNSUPPORTED = re.compile(r"Unsupported function types \[([^\]]*)\]")

# the x86/arm CPU intrinsics MetaSchedule may tensorize with, per LLVM architecture
_INTRIN_MODULES = {"x86_64": ("x86",), "aarch64": ("arm_cpu",)}


def light_tensor_intrin(arch: str) -> None:
    """Register only ``arch``'s tensor intrinsics, so ``import tvm.s_tir.tensor_intrin`` is instant.

    TVM 0.27 imports the whole ``tvm.s_tir.tensor_intrin`` package in every ``TuneContext``
    and in every MetaSchedule build (``default_build``). It parses the CUDA, ROCm, Hexagon,
    Metal, ARM and x86 intrinsics from TVMScript: about 30 s of CPU each time (and minutes on
    a busy two-core host), longer than the builder's default 30 s timeout, so every build
    of a tuning run fails. A CPU target needs only its own architecture's intrinsics. This
    installs the package module without running its ``__init__`` and imports just those.
    """
    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        return
    import tvm.s_tir

    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        return
    pkg = types.ModuleType(name)
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    pkg.__file__ = spec.origin
    pkg.__package__ = name
    sys.modules[name] = pkg
    tvm.s_tir.tensor_intrin = pkg  # type: ignore[attr-defined]
    for sub in _INTRIN_MODULES.get(arch, ()):
        importlib.import_module(f"{name}.{sub}")


def init_builder_worker() -> None:
    """MetaSchedule builder-worker initializer: cheap intrinsics for the host, once per worker."""
    import platform

    light_tensor_intrin(platform.machine())


# ------------------------------------------------------------------------------------ targets


def jsonable(value: Any) -> Any:
    """TVM containers and objects (target attributes) as plain JSON values."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "__len__") and hasattr(value, "__getitem__"):
        return [jsonable(v) for v in value]
    return str(value)


def _cpuinfo_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


# LLVM feature → /proc/cpuinfo flag, for the SIMD extensions that matter to generated code
_X86_FLAGS = {
    "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c",
    "avx512f": "avx512f", "avx512bw": "avx512bw", "avx512dq": "avx512dq", "avx512vl": "avx512vl",
    "avx512cd": "avx512cd", "avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512_fp16", "avxvnni": "avx_vnni", "amx-tile": "amx_tile",
}


def target_spec(kind: str) -> dict[str, Any]:
    """The TVM target, as the dict TVM 0.27 takes (its CLI-string form is refused).

    ``host``: LLVM for this machine: its triple and CPU name from LLVM's host detection,
    with any SIMD extension that the CPU model implies but this (virtual) CPU does not report
    switched off in ``mattr``. ``aarch64``: 64-bit Arm Linux with NEON (``aarch64-linux-gnu``).
    """
    import platform

    import tvm
    from tvm.target import codegen

    if kind == "aarch64":
        return {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "generic", "mattr": ["+neon"], "num-cores": 1}
    triple = codegen.llvm_get_system_triple()
    # pip wheels are built with conda's LLVM, whose default triple names the vendor "conda"
    arch, _, rest = triple.partition("-")
    triple = f"{arch}-{rest.split('-', 1)[1]}" if rest.startswith("conda-") else triple
    spec: dict[str, Any] = {"kind": "llvm", "mtriple": triple, "mcpu": codegen.llvm_get_system_cpu()}
    if platform.machine() == "x86_64":
        implied = codegen.llvm_get_cpu_features(tvm.target.Target(spec))
        flags = _cpuinfo_flags()
        off = sorted(f"-{f}" for f, flag in _X86_FLAGS.items() if f in implied and flags and flag not in flags)
        if off:
            spec["mattr"] = off
    spec["num-cores"] = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return spec


def vector_lanes(target: Any) -> int:
    from tvm.target import codegen

    try:
        bits = int(codegen.llvm_get_vector_width(target))
    except Exception:  # noqa: BLE001
        bits = 0
    return max(4, (bits if bits > 0 else 128) // 32)


def features(target: Any) -> list[str]:
    from tvm.target import codegen

    try:
        feats = codegen.llvm_get_cpu_features(target)
    except Exception:  # noqa: BLE001
        return []
    simd = ("sse", "avx", "fma", "neon", "sve", "amx", "f16c", "dotprod", "i8mm", "bf16", "fp16")
    return sorted(f for f in feats if f.startswith(simd) or f in ("fma",))


def check_cross_toolchain() -> str:
    path = shutil.which(CROSS_CXX)
    if path is None:
        raise TargetUnavailable(
            f"target 'tvm' option tvm_target='aarch64' needs the cross linker {CROSS_CXX}, which is not on PATH "
            f"({CROSS_HINT})"
        )
    return path


# ------------------------------------------------------------------------------------ import


def import_program(program: Any, origin: Callable[[str], str]) -> Any:
    """ExportedProgram → Relax IRModule; an op TVM has no converter for becomes Unsupported naming it."""
    from tvm.relax.frontend.torch import from_exported_program

    try:
        return from_exported_program(program, keep_params_as_input=False, unwrap_unit_return_tuple=False)
    except AssertionError as exc:
        m = _UNSUPPORTED.search(str(exc))
        if not m:
            raise
        ops = [o.strip().strip("'\"") for o in m.group(1).split(",") if o.strip()]
        named = []
        for op in ops:
            where = origin(f"aten.{op.split('.')[0]}")
            named.append(f"aten.{op}" + (f" (from {where})" if where else ""))
        import tvm

        raise Unsupported(
            f"target 'tvm' cannot lower op {', '.join(named)}: tvm.relax.frontend.torch {tvm.__version__} has no "
            "converter for it; replace the op or choose another target"
        ) from exc


# ------------------------------------------------------------------------------------ build


def _fuse_passes() -> list[Any]:
    from tvm import relax

    return [
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
    ]


def fuse(mod: Any, target: Any, layout: str = "NCHW") -> Any:
    """Inference decompositions, optional NHWC layout, legalisation to TIR and fusion (what tuning tasks are made of)."""
    import tvm
    from tvm import relax

    with target:
        mod = relax.transform.DecomposeOpsForInference()(mod)
        mod = relax.transform.CanonicalizeBindings()(mod)
        if layout == "NHWC":
            # channels innermost: convolutions vectorize over output channels with contiguous
            # weight loads whatever their stride; constant weights are transposed at compile time
            mod = relax.transform.ConvertLayout({"relax.nn.conv2d": ["NHWC", "HWIO"]})(mod)
        return tvm.transform.Sequential(_fuse_passes())(mod)


def _lower_passes() -> list[Any]:
    """TVM 0.27's CPU dataflow-lowering and finalisation passes (relax/backend/cpu_generic/pipeline.py)."""
    from tvm import relax

    t = relax.transform
    return [
        t.RewriteDataflowReshape(), t.ToNonDataflow(), t.RemovePurityChecking(), t.CallTIRRewrite(),
        t.StaticPlanBlockMemory(), t.LowerAllocTensor(), t.KillAfterLastUse(), t.LowerRuntimeBuiltin(),
        t.ComputePrimValue(), t.VMShapeLower(), t.AttachGlobalSymbol(),
    ]


def prim_funcs(mod: Any) -> list[tuple[str, Any]]:
    import tvm

    return [(gv.name_hint, f) for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]


def _scheduled(func: Any) -> bool:
    attrs = func.attrs
    return bool(attrs is not None and "tirx.is_scheduled" in attrs and int(attrs["tirx.is_scheduled"]) == 1)


def build(fused: Any, target: Any, schedule: str, database: Any | None) -> tuple[Any, dict[str, Any]]:
    """Schedule the fused module (tuning records first, then default rules) and build it for the VM."""
    import tvm
    from tvm import relax
    from tvm.s_tir import dlight as dl

    from edgest_tvm.schedule import default_rules

    stats: dict[str, Any] = {"kernels": len(prim_funcs(fused))}

    @tvm.transform.module_pass(opt_level=0, name="EdgestTVMSchedule")
    def _pipeline(mod: Any, _ctx: Any) -> Any:
        with target:
            if database is not None:
                with database:
                    mod = relax.transform.MetaScheduleApplyDatabase()(mod)
                stats["kernels_from_tuning_db"] = sum(_scheduled(f) for _, f in prim_funcs(mod))
            before = sum(_scheduled(f) for _, f in prim_funcs(mod))
            if schedule == "edgest":
                mod = dl.ApplyDefaultSchedule(*default_rules(vector_lanes(target)))(mod)
            elif schedule == "dlight":
                mod = dl.ApplyDefaultSchedule(dl.cpu.GEMV(), dl.cpu.Reduction())(mod)
            stats["kernels_default_scheduled"] = sum(_scheduled(f) for _, f in prim_funcs(mod)) - before
            left = sorted(n for n, f in prim_funcs(mod) if not _scheduled(f))
            stats["kernels_unscheduled"] = left[:20] + ([f"... {len(left) - 20} more"] if len(left) > 20 else [])
            return tvm.transform.Sequential(_lower_passes())(mod)

    with tvm.transform.PassContext(opt_level=3):
        ex = tvm.compile(fused, target=target, relax_pipeline=_pipeline)
    return ex, stats


def export(ex: Any, path: Path, cross: bool) -> None:
    """Write the shared library; cross-linked with aarch64-linux-gnu-g++ for the aarch64 target."""
    if cross:
        from tvm.support import cc

        ex.export_library(str(path), fcompile=cc.cross_compiler(CROSS_CXX))
    else:
        ex.export_library(str(path))


# ------------------------------------------------------------------------------------ tuning


def _has_reduction(mod: Any) -> bool:
    text = mod.script()
    return "T.axis.reduce" in text or re.search(r'remap\("[SR]*R', text) is not None


def _db_dir(root: Path, target: Any) -> Path:
    spec = jsonable(target.export())
    key = "-".join(str(spec.get(k, "")) for k in ("mtriple", "mcpu")) or "llvm"
    extra = spec.get("mattr")
    if extra:
        key += "-" + "".join(str(a) for a in extra).replace("+", "p").replace("-", "m")
    return root / re.sub(r"[^A-Za-z0-9_.+-]", "_", key)


def open_database(root: Path, target: Any, per_target: bool = True) -> tuple[Any, Path]:
    """The JSON database in ``root`` (in its sub-folder for ``target`` when ``per_target``)."""
    from tvm.s_tir import meta_schedule as ms

    path = _db_dir(root, target) if per_target else root
    path.mkdir(parents=True, exist_ok=True)
    db = ms.database.JSONDatabase(
        path_workload=str(path / "database_workload.json"),
        path_tuning_record=str(path / "database_tuning_record.json"),
        module_equality="structural",
    )
    return db, path


def _measure(items: list[tuple[Any, Any]], target: Any, builder: Any, runner: Any) -> list[list[float] | None]:
    """Build and time ``(IRModule, schedule)`` pairs with MetaSchedule's builder and runner."""
    from tvm.s_tir import meta_schedule as ms

    builds = builder.build([ms.builder.BuilderInput(sch.mod, target) for _, sch in items])
    inputs, where = [], []
    for i, ((mod, _), b) in enumerate(zip(items, builds)):
        if b.error_msg is None:
            inputs.append(ms.runner.RunnerInput(b.artifact_path, "cpu", ms.arg_info.ArgInfo.from_prim_func(mod["main"])))
            where.append(i)
    out: list[list[float] | None] = [None] * len(items)
    for i, fut in zip(where, runner.run(inputs)):
        res = fut.result()
        if res.error_msg is None and res.run_secs:
            out[i] = [float(s) for s in res.run_secs]
    for b in builds:
        if b.artifact_path:
            shutil.rmtree(os.path.dirname(b.artifact_path), ignore_errors=True)
    return out


#: a task gets at least this many trials; a small budget tunes the heaviest tasks only
MIN_TRIALS_PER_TASK = 16


def heaviest(tasks: list[Any], n: int) -> list[Any]:
    """The ``n`` tasks with the most floating-point work (FLOPs x occurrences), heaviest first."""
    from tvm.s_tir.analysis import estimate_tir_flops

    def work(task: Any) -> float:
        try:
            return float(estimate_tir_flops(task.dispatched[0])) * task.weight
        except Exception:  # noqa: BLE001 - a kernel the estimator cannot read counts as light
            return 0.0

    return sorted(tasks, key=work, reverse=True)[:n]


def _search(todo: list[Any], target: Any, trials: int, threads: int, db: Any, path: Path) -> dict[str, Any]:
    """Measure each task's default schedule, then run MetaSchedule's search over ``todo``."""
    import tvm
    from tvm.s_tir import meta_schedule as ms

    from edgest_tvm.schedule import default_rules

    # one builder worker, initialised once (cheap intrinsics) and reused, with a long timeout:
    # TVM's default (a fresh worker per build, 30 s) fails every build while the worker
    # imports tvm.s_tir.tensor_intrin
    builder = ms.builder.LocalBuilder(max_workers=1, timeout_sec=600.0, initializer=init_builder_worker)
    runner = ms.runner.LocalRunner(
        timeout_sec=60.0,
        evaluator_config=ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=50, enable_cpu_cache_flush=False),
    )
    rules = default_rules(vector_lanes(target))
    baseline = []
    for task in todo:
        mod = task.dispatched[0]
        for rule in rules:
            sch = rule.apply(mod["main"], target, False)
            if sch is not None:
                replay = tvm.s_tir.Schedule(mod)
                sch.trace.apply_to_schedule(replay, remove_postproc=False)
                baseline.append((mod, replay))
                break
    measured = 0
    for (mod, sch), secs in zip(baseline, _measure(baseline, target, builder, runner)):
        if secs:
            wl = db.commit_workload(mod)
            db.commit_tuning_record(ms.database.TuningRecord(
                sch.trace, wl, secs, target, ms.arg_info.ArgInfo.from_prim_func(mod["main"])))
            measured += 1
    per_task = max(1, trials // max(1, len(todo)))
    # MetaSchedule's default search (population 512, 4 genetic rounds) costs ~45 s of CPU per task and
    # round here, more than measuring a few candidates; size it to the trials a task gets instead
    strategy = ms.search_strategy.EvolutionarySearch(
        population_size=min(512, max(64, 8 * per_task)), init_min_unmeasured=min(50, max(16, 2 * per_task)),
        genetic_num_iters=2)
    contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
        todo, work_dir=str(path), strategy=strategy, num_threads=threads, seed=0)
    ms.tune_tasks(
        tasks=contexts, task_weights=weights, work_dir=str(path),
        max_trials_global=trials, max_trials_per_task=per_task,
        num_trials_per_iter=min(64, per_task), builder=builder, runner=runner, database=db,
    )
    return {"baselines_measured": measured, "trials_per_task": per_task}


def final_folder(stage: Path) -> Path:
    """The run folder a staging folder becomes (edgest.outdir stages ``out`` as ``.NAME.partial-XXXX``)."""
    m = re.fullmatch(r"\.(.+)\.partial-\w+", stage.name)
    return stage.parent / m.group(1) if m else stage


def reuse_local_db(out_dir: Path, db: Path) -> bool:
    """Seed ``db`` (``tuning/`` in the staging folder) from the run folder being replaced, if it has one."""
    old = final_folder(out_dir) / db.name
    if old == db or not (old / "database_tuning_record.json").is_file():
        return False
    shutil.copytree(old, db, dirs_exist_ok=True, ignore=shutil.ignore_patterns("logs"))
    return True


def tune(fused: Any, target: Any, trials: int, db_root: Path, threads: int,
         per_target: bool = True) -> tuple[Any, dict[str, Any]]:
    """Tune the kernels the shared database has no search result for; record default schedules too.

    Every task's default (edgest) schedule is measured and committed next to the searched
    ones, so applying the database never picks a tuned kernel slower than the untuned one.
    Tasks that already have search results (from any earlier run or model) are not tuned again.
    The budget goes to the heaviest untuned tasks, at least ``MIN_TRIALS_PER_TASK`` trials
    each (64 trials: the 4 heaviest kernels); the rest keep edgest's default schedules.
    """
    import platform

    from tvm.s_tir import meta_schedule as ms

    light_tensor_intrin(platform.machine())
    db, path = open_database(db_root, target, per_target)
    index_path = path / "edgest-tuned.json"
    try:
        index: dict[str, Any] = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    # kernels without a reduction (reshapes, elementwise) gain little from search: spend the budget on the rest
    tasks = [t for t in ms.relax_integration.extract_tasks(fused, target) if _has_reduction(t.dispatched[0])]
    keys = [hashlib.sha256(t.dispatched[0].script().encode()).hexdigest()[:24] for t in tasks]
    untuned = [t for t, k in zip(tasks, keys) if k not in index or not db.has_workload(t.dispatched[0])]
    todo = heaviest(untuned, max(1, trials // MIN_TRIALS_PER_TASK))
    info: dict[str, Any] = {"trials": trials, "tasks": len(tasks), "tasks_tuned_now": len(todo),
                            "tasks_from_db": len(tasks) - len(untuned), "tasks_left_untuned": len(untuned) - len(todo),
                            "db": str(path), "threads": threads}
    t0 = time.perf_counter()
    if todo:
        ms_logger = logging.getLogger("tvm.s_tir.meta_schedule")
        ms_logger.setLevel(logging.ERROR)  # per-task logs go to db/logs
        # tune_tasks re-lists this logger's handlers by name in a logging dictConfig; a second tuning in one
        # process (a bench, a test session) finds an unnamed one there and fails ('NoneType' has no 'format')
        ms_logger.handlers = [h for h in ms_logger.handlers if h.get_name()]
        saved = os.environ.get("TVM_NUM_THREADS")
        os.environ["TVM_NUM_THREADS"] = str(threads)  # the runner's workers inherit it
        try:
            info.update(_search(todo, target, trials, threads, db, path))
        finally:
            if saved is None:
                os.environ.pop("TVM_NUM_THREADS", None)
            else:
                os.environ["TVM_NUM_THREADS"] = saved
        todo_keys = {k for t, k in zip(tasks, keys) if t in todo}
        index.update({k: {"trials": info["trials_per_task"]} for k in todo_keys})
        tmp = index_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
        tmp.replace(index_path)
    info["seconds"] = round(time.perf_counter() - t0, 2)
    info["workloads"] = [t.dispatched[0] for t in tasks]
    return db, info


def copy_records(db: Any, workloads: list[Any], dest: Path) -> int:
    """Copy the best record of each of this model's kernels into a JSON database at ``dest``."""
    from tvm.s_tir import meta_schedule as ms

    dest.mkdir(parents=True, exist_ok=True)
    out = ms.database.JSONDatabase(
        path_workload=str(dest / "database_workload.json"),
        path_tuning_record=str(dest / "database_tuning_record.json"),
        module_equality="structural",
    )
    n = 0
    for mod in workloads:
        if not db.has_workload(mod):
            continue
        top = db.get_top_k(db.commit_workload(mod), 1)
        if top:
            rec = top[0]
            wl = out.commit_workload(mod)
            out.commit_tuning_record(ms.database.TuningRecord(rec.trace, wl, rec.run_secs, rec.target, rec.args_info))
            n += 1
    return n
