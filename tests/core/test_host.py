"""Host ISA features: parsed from cpuinfo / sysctl text, summarised, and carried by every host dict."""

from __future__ import annotations

import json
import subprocess
import sys

from edgest import host

#: an AMX Xeon's flags line (Sapphire Rapids class), trimmed
SPR = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 ssse3 fma avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx_vnni avx512_bf16 avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8
processor\t: 1
flags\t\t: fpu sse2
"""
#: a laptop-class x86 without AVX-512
AVX2_ONLY = "model name\t: Intel(R) Core(TM) i7-8650U\nflags\t\t: fpu sse4_2 avx avx2 fma f16c\n"
#: an Arm core (Neoverse-N1 class): dot product and fp16 arithmetic, no bf16/i8mm
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"
#: macOS on Apple silicon (M2 class)
SYSCTL = "hw.optional.neon: 1\nhw.optional.arm.FEAT_DotProd: 1\nhw.optional.arm.FEAT_I8MM: 1\nhw.optional.arm.FEAT_BF16: 1\n" \
         "hw.optional.arm.FEAT_FP16: 1\nhw.optional.arm.FEAT_SME: 0\nhw.optional.avx512f: 0\n"


def test_amx_xeon_flags_give_every_feature_in_a_fixed_order():
    feats = host.parse_cpuinfo(SPR)
    assert feats == ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8",
                     "amx_bf16", "avx512_bf16", "avx512_fp16")
    assert host.capabilities(feats) == {"avx2": True, "avx512": True, "vnni": True, "amx": True, "bf16": True, "fp16": True}
    assert host.isa_summary(feats) == "AVX2, AVX-512 (F/BW/VL), VNNI (avx512_vnni, avx_vnni), AMX (int8/bf16), bf16, fp16"


def test_avx2_laptop_has_no_vnni_amx_bf16_or_fp16():
    feats = host.parse_cpuinfo(AVX2_ONLY)
    assert feats == ("avx2",)  # f16c converts, it does not compute: not fp16
    assert host.capabilities(feats) == {"avx2": True, "avx512": False, "vnni": False, "amx": False, "bf16": False,
                                        "fp16": False}
    assert host.isa_summary(feats) == "AVX2"


def test_arm_features_line_and_macos_sysctl():
    arm = host.parse_cpuinfo(ARM)
    assert arm == ("asimd", "asimddp", "asimdhp")
    assert host.capabilities(arm)["vnni"] and host.capabilities(arm)["fp16"] and not host.capabilities(arm)["bf16"]
    assert host.isa_summary(arm) == "NEON, dot product, fp16"
    mac = host.parse_sysctl(SYSCTL)
    assert mac == ("asimd", "asimddp", "i8mm", "bf16", "asimdhp")  # a 0 is absent
    assert host.isa_summary(mac) == "NEON, dot product, i8mm, bf16, fp16"


def test_text_without_a_flags_line_has_no_features_and_unreadable_is_unknown(monkeypatch):
    assert host.parse_cpuinfo("model name\t: something\n") == ()
    assert host.isa_summary(()) == "none of the recorded features"
    monkeypatch.setattr(host, "isa_features", lambda: None)  # neither cpuinfo nor sysctl readable
    assert host.isa_summary() == "unknown" and host.describe()["isa"] == "unknown"
    assert not any(host.capabilities().values())


def test_every_host_dict_and_doctor_carry_the_isa():
    described = host.describe()
    feats = host.isa_features()
    assert described["isa"] == (" ".join(feats) if feats is not None else "unknown")
    assert set(described["isa"].split()) <= {*host.X86_FEATURES, *host.ARM_FEATURES, "unknown"}
    proc = subprocess.run([sys.executable, "-m", "edgest", "doctor", "--json"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["isa"] == host.isa_summary() and data["isa_features"] == described["isa"]


def test_int8_sums_in_int32_only_with_vnni_amx_or_off_x86():
    """One answer for every int8 target: ONNX Runtime's reduce_range and NNCF's overflow fix both follow it."""
    from edgest_onnx.quantizer import choose_settings

    spr, avx2 = host.parse_cpuinfo(SPR), host.parse_cpuinfo(AVX2_ONLY)
    dots = "avx512_vnni/avx_vnni/amx_int8"
    assert host.int8_sums_in_int32(spr, "x86_64") == (True, f"{dots} present: int8 products accumulate in int32")
    assert host.int8_sums_in_int32(("amx_int8",), "x86_64")[0]
    in_int32, why = host.int8_sums_in_int32(avx2, "x86_64")
    assert not in_int32 and "VPMADDUBSW" in why and "int16" in why
    assert host.int8_sums_in_int32((), "x86_64") == (False, "CPU flags unknown")
    assert host.int8_sums_in_int32(None, "aarch64") == (True, "aarch64 CPU: int8 products accumulate in int32")
    for feats in (spr, avx2, ()):
        assert choose_settings(feats, "x86_64")["reduce_range"] is not host.int8_sums_in_int32(feats, "x86_64")[0]
