"""Ops with non-default scalar arguments on every target: does each converter honour them?

TVM's Relax frontend and coreai-torch once read ``x.add(y, alpha=a)`` as ``x + y`` (edgest.graph_fixes
rewrites it now). This sweep looks for more faults of that kind: one small model whose outputs are ~30
core ATen ops, each with a scalar argument away from its default (``rounding_mode``, ``beta``/``alpha``,
``eps``, ``approximate``, ``correction``, ``decimals``, ...), compiled at fp32 for each target through
``edgest.compile``, and each output's SQNR against eager PyTorch read from the report
(``per_output``). Where a target cannot compile the whole model, each op is compiled alone.

    python bench/scalar_args_sweep.py [--targets onnx,executorch,...] [--out DIR]

Prints a table: op × target, SQNR in dB (≥ 100: exact), "fails: …" where the op alone does not compile.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

T = torch.Tensor

#: name → op on x (1, 4, 8, standard normal) and y (positive, away from zero)
OPS: dict[str, Callable[[T, T], T]] = {
    "add alpha": lambda x, y: x.add(y, alpha=0.5),
    "sub alpha": lambda x, y: x.sub(y, alpha=2.0),
    "rsub alpha": lambda x, y: torch.rsub(x, y, alpha=3.0),
    "div floor": lambda x, y: torch.div(x * 3, y, rounding_mode="floor"),
    "div trunc": lambda x, y: torch.div(x * 3, y, rounding_mode="trunc"),
    "floor_divide": lambda x, y: torch.floor_divide(x * 3, y),
    "remainder": lambda x, y: torch.remainder(x * 3, y),
    "fmod": lambda x, y: torch.fmod(x * 3, y),
    "addmm beta alpha": lambda x, y: torch.addmm(y[0, :, :4], x[0], y[0].transpose(0, 1), beta=0.5, alpha=2.0).unsqueeze(0),
    "baddbmm beta alpha": lambda x, y: torch.baddbmm(x.transpose(1, 2) @ x, x.transpose(1, 2), y, beta=0.5, alpha=2.0),
    "addcmul value": lambda x, y: torch.addcmul(x, x, y, value=0.5),
    "addcdiv value": lambda x, y: torch.addcdiv(x, x, y, value=0.5),
    "lerp weight": lambda x, y: torch.lerp(x, y, 0.3),
    "clamp min only": lambda x, y: torch.clamp(x, min=-0.3),
    "clamp max only": lambda x, y: torch.clamp(x, max=0.4),
    "threshold value": lambda x, y: F.threshold(x, 0.1, -2.0),
    "leaky_relu slope": lambda x, y: F.leaky_relu(x, 0.2),
    "elu alpha": lambda x, y: F.elu(x, alpha=0.5),
    "celu alpha": lambda x, y: F.celu(x, alpha=2.0),
    "hardtanh bounds": lambda x, y: F.hardtanh(x, -0.5, 0.7),
    "softplus beta threshold": lambda x, y: F.softplus(x * 3, beta=2.0, threshold=2.0),
    "gelu tanh": lambda x, y: F.gelu(x * 3, approximate="tanh"),
    "pow scalar": lambda x, y: torch.pow(y, 1.7),
    "round decimals": lambda x, y: torch.round(x * 10, decimals=1),
    "var correction 0": lambda x, y: torch.var(x, -1, correction=0, keepdim=True),
    "std correction 1": lambda x, y: torch.std(x, -1, correction=1, keepdim=True),
    "layer_norm eps": lambda x, y: F.layer_norm(x * 0.1, (8,), eps=0.5),
    "normalize p1": lambda x, y: F.normalize(x, p=1.0, dim=-1),
    "logsumexp": lambda x, y: torch.logsumexp(x, -1, keepdim=True),
    "cumsum": lambda x, y: x.cumsum(-1),
    "softmax dim 1": lambda x, y: torch.softmax(x, 1),
    "log_softmax": lambda x, y: F.log_softmax(x, -1),
}
TARGETS = ["onnx", "executorch", "tvm", "openvino", "litert", "coreml", "coreai", "cuda"]
SHAPE = (1, 4, 8)


class Sweep(torch.nn.Module):
    """One output per op in ``names``."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def forward(self, x: T) -> tuple[T, ...]:
        y = x.flip(-1).abs() + 0.5
        return tuple(OPS[n](x, y) for n in self.names)


def compiled(names: list[str], target: str, out: Path) -> list[float] | str:
    """Each op's SQNR in dB on ``target``, or why the model did not compile."""
    import edgest
    from edgest.errors import EdgestError

    try:
        report = edgest.compile(Sweep(names), target, input_shape=SHAPE, precision="fp32", out_dir=out, latency=None,
                                samples=4, force=True)
    except EdgestError as exc:
        return str(exc).splitlines()[0][:120]
    acc = report.check("accuracy")
    per = acc.metrics.get("per_output") or ([acc.metrics] if "sqnr_db" in acc.metrics else [])
    if len(per) != len(names):
        return (report.error or acc.reason or acc.status).splitlines()[0][:120]
    return [o["sqnr_db"] for o in per]


def column(target: str, out: Path) -> dict[str, str]:
    """Per op: its SQNR on ``target`` (from the whole sweep, or the op alone where the whole fails)."""
    names = list(OPS)
    whole = compiled(names, target, out / target)
    if not isinstance(whole, str):
        return {n: f"{db:.0f}" for n, db in zip(names, whole)}
    cells = {}
    for i, n in enumerate(names):
        alone = compiled([n], target, out / f"{target}-{i}")
        cells[n] = f"{alone[0]:.0f}" if not isinstance(alone, str) else f"fails: {alone}"
    return cells


def main() -> None:
    import warnings

    warnings.simplefilter("ignore")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="edgest-sweep-"))
    targets = args.targets.split(",")
    cols = {}
    for t in targets:
        cols[t] = column(t, out)
        print(f"{t}: done", flush=True)
    print("| op | " + " | ".join(targets) + " |\n|---|" + "---|" * len(targets))
    for n in OPS:
        print(f"| {n} | " + " | ".join(cols[t][n] for t in targets) + " |")


if __name__ == "__main__":
    main()
