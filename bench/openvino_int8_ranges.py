"""OpenVINO int8 with each value of one int8 option, end to end: the activation range estimator
(``--target-option activation_ranges=...``, the default axis), with ``--axis scheme`` asymmetric or
symmetric activations (``activation_scheme=...``), or with ``--axis overflow`` NNCF's overflow fix
(``overflow_fix=...``: 7-bit weights in the first layer only, NNCF's default, or in every layer).

For each model: ``edgest compile --target openvino --precision int8`` once per value, with the
model's trained checkpoint when ``--weights-dir`` has one (``DIR/<model>.pt``, e.g. from ``edgest
train``; task top-1 on the 256 labelled synthetic clips is then judged), and the accuracy check's
figures side by side: status, SQNR of the artifact and of the quantize pass alone (eager PyTorch on
the quantised program), top-1 agreement, task drop, p50. One compile after the other: the p50s are
for spotting a large change, not a ratio (``bench/peers.py`` times in turns).

    python bench/openvino_int8_ranges.py --weights-dir W      # the seven trained tiny models, ~15 min here
    python bench/openvino_int8_ranges.py --models squeezetime,vivit_fa_ti --ranges minmax,mean_minmax
    python bench/openvino_int8_ranges.py --weights-dir W --axis scheme     # asymmetric against symmetric
    python bench/openvino_int8_ranges.py --weights-dir W --axis overflow   # matters on x86 without VNNI
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import edgest
from edgest.host import cpu_model, isa_summary

#: --axis → the target option it varies, and its values by default
AXES = {"ranges": ("activation_ranges", "mean_minmax,minmax"), "scheme": ("activation_scheme", "symmetric,asymmetric"),
        "overflow": ("overflow_fix", "first_layer_only,enable")}
TINY = "squeezetime_tiny,lmuformer_video_tiny,vivit_fe_tiny,vivit_fa_tiny,emov2_tiny_video,lmuformer_tiny,lmuformer_spiking_tiny"


def row(model: str, option: str, value: str, weights: Path | None, out: Path) -> str:
    """One markdown row: the compile's status and its accuracy and latency figures."""
    report = edgest.compile(model, "openvino", out_dir=out, precision="int8", weights=weights,
                            target_options={option: value}, force=True)
    acc, lat = report.check("accuracy").metrics, report.check("latency").metrics
    delta = next((p.accuracy_delta or {} for p in report.passes if p.name == "quantize"), {})
    drop = acc.get("task_top1_drop_pts")
    return (f"| {model} | {value} | {report.status} | {acc.get('sqnr_db', float('nan')):.1f} | "
            f"{delta.get('sqnr_db', float('nan')):.1f} | {acc.get('top1_agreement', 0):.1%} | "
            f"{'-' if drop is None else f'{drop:.1f}'} | {lat.get('p50_ms', float('nan')):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=TINY)
    ap.add_argument("--axis", choices=tuple(AXES), default="ranges", help="which int8 option to vary")
    ap.add_argument("--ranges", default=None, help="the values to compare (default: both of the axis's)")
    ap.add_argument("--weights-dir", type=Path, default=None, help="DIR/<model>.pt: trained checkpoints")
    args = ap.parse_args()
    option, values = AXES[args.axis]
    print(f"Host: {cpu_model()}; ISA: {isa_summary()}\n")
    print(f"| model | {option} | status | SQNR dB | quantize pass alone dB | top-1 agr. | task drop pt | p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="edgest-ov-ranges-") as tmp:
        for model in args.models.split(","):
            w = args.weights_dir / f"{model}.pt" if args.weights_dir else None
            for value in (args.ranges or values).split(","):
                print(row(model, option, value, w if w is not None and w.is_file() else None, Path(tmp) / model / value),
                      flush=True)


if __name__ == "__main__":
    main()
