"""Memory and disk a run will need, checked before anything big is built.

A careless ``--input-shape 1x3x16x4096x4096`` or ``--calibration-size 100000`` used to grow past
the machine's memory before anything looked; these checks refuse such a run up front with one
line naming the figures and the fix. They are estimates, erring on the side of letting a run go:

* inputs: ``prod(shape) x itemsize`` per input, counted twice (the compile holds the checked
  inputs, and the check process loads its own copy);
* activations: the peak of live intermediate tensors during one forward pass, traced on fake
  tensors (no memory, no real compute; :func:`activation_peak_bytes`);
* calibration: every calibration input once. The set itself is streamed when large
  (:mod:`edgest.data.calibration`), but quantizers that collect statistics per input (ONNX
  Runtime's MinMax calibrator keeps every input's activations) hold at least that much.

Available memory is ``MemAvailable`` from ``/proc/meminfo``, capped by a cgroup (container)
limit and ``ulimit -v``, else ``os.sysconf``; where none is readable the memory checks pass. No psutil.
"""

from __future__ import annotations

import math
import os
import shutil
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput

if TYPE_CHECKING:
    import torch

GIB = 1 << 30


def fmt_bytes(n: float) -> str:
    """``12.3 GiB``, ``450.0 MiB``, ``12.0 KiB``: binary units, one decimal."""
    for unit, scale in (("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _cgroup_room(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes left under this process's cgroup memory limit (v2, else v1), or None without a limit."""
    try:
        rel = next((line.split("::", 1)[1].strip() for line in Path("/proc/self/cgroup").read_text().splitlines()
                    if line.startswith("0::")), "/")
    except OSError:
        rel = "/"
    for folder in (root / rel.lstrip("/"), root):
        limit, used = _read_int(folder / "memory.max"), _read_int(folder / "memory.current")
        if limit is not None and used is not None:
            return max(0, limit - used)
    limit, used = _read_int(root / "memory/memory.limit_in_bytes"), _read_int(root / "memory/memory.usage_in_bytes")
    if limit is not None and used is not None and limit < 1 << 60:  # v1 reports "no limit" as a huge number
        return max(0, limit - used)
    return None


def _rlimit_room() -> int | None:
    """Address space left under ``ulimit -v`` (RLIMIT_AS), or None without a limit."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm") as fh:
            used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, IndexError):
        return None
    return max(0, limit - used)


def available_memory() -> int | None:
    """Bytes of memory this process can still use without swapping, or None where it cannot be read.

    The least of: ``MemAvailable``, the room under a cgroup limit, the room under ``ulimit -v``.
    """
    figures = [f for f in (_meminfo_available(), _cgroup_room(), _rlimit_room()) if f is not None]
    if not figures:
        try:
            figures = [os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
        except (ValueError, OSError, AttributeError):
            return None
    return min(figures)


def tensor_bytes(shape: Sequence[int], itemsize: int = 4) -> int:
    """Bytes of one dense tensor of ``shape`` (float32 unless told)."""
    return math.prod(int(d) for d in shape) * itemsize


def activation_peak_bytes(module: torch.nn.Module, shape: Sequence[int], dtype: Any = None) -> int | None:
    """Peak bytes of live intermediate tensors in one no-grad forward of ``module`` on an input of ``shape``.

    Traced on fake tensors (parameters and buffers replaced, so the module is not touched; nothing
    is allocated or computed). None where the forward cannot run on fake tensors (e.g. it reads a
    value with ``.item()``): then there is no estimate, and no refusal on its account.
    """
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.func import functional_call

    import logging

    quiet = logging.getLogger("torch._subclasses.fake_tensor")  # a shape error is the eager run's to report, once
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        mode = FakeTensorMode()
        state = {**dict(module.named_parameters(remove_duplicate=False)), **dict(module.named_buffers(remove_duplicate=False))}
        fake = {k: mode.from_tensor(v) for k, v in state.items()}
        tracker = _live_bytes_mode()()
        with torch.no_grad(), mode:
            x = torch.empty(tuple(shape), dtype=dtype or torch.float32)
            with tracker:
                out = functional_call(module, fake, (x,), strict=False)
            del out
        return tracker.peak
    except Exception:  # noqa: BLE001 - an estimate that cannot be made is no reason to fail the run
        return None
    finally:
        quiet.setLevel(level)


def _live_bytes_mode() -> type:
    """The dispatch mode class, built on first use so that torch is imported lazily."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class LiveBytes(TorchDispatchMode):
        """Counts bytes of tensors ops create (views and in-place results excluded) while they are alive."""

        def __init__(self) -> None:
            super().__init__()
            self.live = self.peak = 0

        def _free(self, n: int) -> None:
            self.live -= n

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            seen = {id(t) for t in tree_leaves((args, kwargs))}
            for t in tree_leaves(out):
                if hasattr(t, "untyped_storage") and id(t) not in seen and not t._is_view():
                    n = t.numel() * t.element_size()
                    self.live += n
                    weakref.finalize(t, self._free, n)
            self.peak = max(self.peak, self.live)
            return out

    return LiveBytes


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


def check_run_memory(spec_shape: Sequence[int], samples: int, task_samples: int = 0,
                     module: torch.nn.Module | None = None, *, available: int | None = None) -> int:
    """Refuse (BadInput) a compile whose inputs and activations will not fit in memory; else the estimate in bytes.

    ``samples`` random inputs and ``task_samples`` labelled ones at ``spec_shape`` (batch
    included), counted twice (compile and check process), plus the activation peak of ``module``
    when given (traced only when the inputs fit). ``available`` defaults to :func:`available_memory`.
    """
    available = available_memory() if available is None else available
    count = samples + max(task_samples, 0)
    need = 2 * count * tensor_bytes(spec_shape)
    what = f"{samples} inputs" + (f" and {task_samples} task samples" if task_samples > 0 else "")
    if module is not None and (available is None or need <= available):
        peak = activation_peak_bytes(module, spec_shape)
        if peak:
            need += peak
            what += " and activations"
    if available is not None and need > available:
        fix = ("use a smaller --input-shape or fewer --samples (input_shape=, samples=)"
               + (" or --task-samples 0 (task_samples=0)" if task_samples > 0 else ""))
        raise BadInput(f"input shape {_shape_text(spec_shape)} needs ~{fmt_bytes(need)} for {what}, but only "
                       f"{fmt_bytes(available)} of memory is available; {fix}")
    return need


def check_calibration(shape: Sequence[int], size: int, *, available: int | None = None) -> int:
    """Refuse (BadInput) ``size`` calibration inputs of ``shape`` that will not fit in memory; else the estimate."""
    available = available_memory() if available is None else available
    per = tensor_bytes(shape)
    need = size * per
    if available is not None and need > available:
        fit = max(1, available // max(per, 1))
        raise BadInput(f"--calibration-size {size} at input {_shape_text(shape)} needs ~{fmt_bytes(need)} "
                       f"({size} inputs of {fmt_bytes(per)}), but only {fmt_bytes(available)} of memory is available; "
                       f"use a smaller --calibration-size (calibration_size=; at most {fit:,} here, the default is 32)")
    return need


def weight_bytes(module: torch.nn.Module) -> int:
    """Bytes of ``module``'s parameters and buffers: roughly a float artifact's size."""
    tensors = {id(t): t for t in (*module.parameters(), *module.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def check_free_disk(folder: str | Path, need_bytes: int, what: str = "the run folder",
                    fix: str = "free some space or choose another --out (out_dir=)") -> int:
    """Refuse (BadInput) writing ``need_bytes`` under ``folder`` (or its nearest existing parent) when its disk
    has less free; else the free bytes (-1 where the disk cannot be asked)."""
    path = Path(folder).absolute()
    existing = next((p for p in (path, *path.parents) if p.exists()), path.anchor)
    try:
        usage = shutil.disk_usage(existing)
    except OSError:
        return -1  # cannot tell: let the write itself report a full disk
    free = usage.free
    if usage.total == 0:  # /proc, /sys: a kernel's view, not a disk; "no space" would send the user looking for space
        raise BadInput(f"cannot write {what} in '{path}': '{existing}' is a virtual file system that holds no files; "
                       f"{fix.replace('free some space or ', '')}")
    if need_bytes > free:
        raise BadInput(f"no space left writing {what} in '{path}' (not enough disk): ~{fmt_bytes(need_bytes)} needed, {fmt_bytes(free)} free; "
                       f"{fix}")
    return free
