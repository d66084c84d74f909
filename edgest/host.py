"""Facts about the machine a check runs on, recorded next to every figure.

Besides the CPU's name and core count, :func:`isa_features` reads the instruction-set features
that decide which precisions can be fast here: AVX2, AVX-512 (F/BW/VL), VNNI (int8 dot
products), AMX (tiles for int8/bf16), native bf16 and fp16 on x86; dot products, i8mm, bf16 and
fp16 arithmetic on Arm. Linux: the ``flags`` (x86) or ``Features`` (Arm) line of
``/proc/cpuinfo``; macOS: ``sysctl hw.optional``, best effort. No toolchain is asked: a runtime
may still decline a feature (its own reading is recorded by its target).
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache

#: x86 features edgest records, as Linux's cpuinfo spells them, in the order they are reported
X86_FEATURES = ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8",
                "amx_bf16", "amx_fp16", "avx512_bf16", "avx512_fp16")
#: Arm features (cpuinfo ``Features``): dot product, int8 matmul, bf16, fp16 arithmetic, SVE/SME
ARM_FEATURES = ("asimd", "asimddp", "i8mm", "bf16", "asimdhp", "sve", "sve2", "sme")
#: macOS ``sysctl hw.optional`` keys → the names above
SYSCTL_NAMES = {
    "hw.optional.avx2_0": "avx2", "hw.optional.avx512f": "avx512f", "hw.optional.avx512bw": "avx512bw",
    "hw.optional.avx512vl": "avx512vl", "hw.optional.avx512vnni": "avx512_vnni", "hw.optional.neon": "asimd",
    "hw.optional.arm.FEAT_DotProd": "asimddp", "hw.optional.arm.FEAT_I8MM": "i8mm", "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_FP16": "asimdhp", "hw.optional.arm.FEAT_SME": "sme",
}
#: capability → the features that give it (any one suffices)
GROUPS = {
    "avx2": ("avx2",),
    "avx512": ("avx512f",),
    "vnni": ("avx512_vnni", "avx_vnni", "asimddp"),
    "amx": ("amx_tile",),
    "bf16": ("avx512_bf16", "amx_bf16", "bf16"),
    "fp16": ("avx512_fp16", "amx_fp16", "asimdhp"),
}


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_cpuinfo(text: str) -> tuple[str, ...]:
    """The recorded features named on the first ``flags`` (x86) or ``Features`` (Arm) line of cpuinfo ``text``."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            present = set(value.split())
            return tuple(f for f in (*X86_FEATURES, *ARM_FEATURES) if f in present)
    return ()


def parse_sysctl(text: str) -> tuple[str, ...]:
    """The recorded features set to 1 in ``sysctl hw.optional`` output (``key: value`` lines)."""
    on = {SYSCTL_NAMES[k.strip()] for k, sep, v in (line.partition(":") for line in text.splitlines())
          if sep and k.strip() in SYSCTL_NAMES and v.strip() == "1"}
    return tuple(f for f in (*X86_FEATURES, *ARM_FEATURES) if f in on)


@lru_cache(maxsize=1)
def isa_features() -> tuple[str, ...] | None:
    """This CPU's recorded ISA features (:data:`X86_FEATURES`, :data:`ARM_FEATURES`); None when unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return parse_cpuinfo(fh.read())
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "hw.optional"], capture_output=True, text=True, timeout=5, check=False)
            return parse_sysctl(out.stdout) if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None
    return None


def capabilities(features: tuple[str, ...] | None = None) -> dict[str, bool]:
    """Which of AVX2, AVX-512, VNNI (int8 dot), AMX, bf16 and fp16 ``features`` (default: this CPU's) give."""
    have = set((isa_features() or ()) if features is None else features)
    return {name: any(f in have for f in needs) for name, needs in GROUPS.items()}


def cpu_capabilities(features: tuple[str, ...] | None = None) -> dict[str, bool]:
    """Public name of :func:`capabilities` (``edgest.cpu_capabilities``): for plugins choosing kernels or
    quantisation settings by the host's CPU (``{"avx2": ..., "avx512": ..., "vnni": ..., "amx": ..., "bf16": ..., "fp16": ...}``)."""
    return capabilities(features)


#: machine names of x86 CPUs (``platform.machine()``, lower case)
X86_MACHINES = ("x86_64", "amd64", "i386", "i686", "x86")
#: x86 features whose int8 dot products sum u8×s8 products in int32 (VNNI, AMX)
INT32_DOT_FEATURES = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_sums_in_int32(features: tuple[str, ...] | None = None, machine: str | None = None) -> tuple[bool, str]:
    """Whether this CPU's (or ``features``/``machine``'s) int8 kernels sum products in int32, and why.

    x86 without VNNI or AMX multiplies u8×s8 with ``VPMADDUBSW``, which adds product pairs in int16
    and saturates; int8 targets give such a CPU 7-bit weights (ONNX Runtime's ``reduce_range``, NNCF's
    overflow fix). Arm and x86 with VNNI/AMX sum in int32. Unreadable (or empty) features give False
    with "CPU flags unknown": 7-bit weights are the safe choice there.
    """
    machine = (machine or platform.machine()).lower()
    if machine not in X86_MACHINES:
        return True, f"{machine} CPU: int8 products accumulate in int32"
    feats = isa_features() if features is None else features
    dots = [f for f in INT32_DOT_FEATURES if f in (feats or ())]
    if dots:
        return True, f"{'/'.join(dots)} present: int8 products accumulate in int32"
    if feats:
        return False, "no VNNI: u8xs8 kernels (VPMADDUBSW) add product pairs in int16, which can saturate"
    return False, "CPU flags unknown"


def isa_summary(features: tuple[str, ...] | None = None) -> str:
    """One line for people: ``AVX2, AVX-512 (F/BW/VL), VNNI, AMX (int8/bf16), bf16, fp16`` (this CPU's by default)."""
    feats = isa_features() if features is None else features
    if feats is None:
        return "unknown"
    have = set(feats)
    parts = ["AVX2"] if "avx2" in have else []
    if "avx512f" in have:
        parts.append("AVX-512 (" + "/".join(x.upper() for x in ("f", "bw", "vl") if f"avx512{x}" in have) + ")")
    vnni = [f for f in ("avx512_vnni", "avx_vnni") if f in have]
    parts += [f"VNNI ({', '.join(vnni)})"] if vnni else []
    amx = [f[4:] for f in ("amx_int8", "amx_bf16", "amx_fp16") if f in have]
    parts += [f"AMX ({'/'.join(amx)})" if amx else "AMX"] if "amx_tile" in have else []
    parts += [{"asimd": "NEON", "asimddp": "dot product", "i8mm": "i8mm", "sve": "SVE", "sve2": "SVE2", "sme": "SME"}[f]
              for f in ARM_FEATURES if f in have and f not in ("bf16", "asimdhp")]
    caps = capabilities(feats)
    parts += [p for p in ("bf16", "fp16") if caps[p]]
    return ", ".join(parts) or "none of the recorded features"


def describe() -> dict[str, object]:
    """Host description: OS, machine, CPU model, logical cores, ISA features, Python."""
    feats = isa_features()
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count() or 1,
        # the features as the OS names them, space-separated ("unknown" when they cannot be read)
        "isa": " ".join(feats) if feats is not None else "unknown",
        "python": platform.python_version(),
    }
