"""Parameters and MACs of every registered zoo variant at its registered input shape, as a Markdown table.

The figures are the ones ``edgest list models`` prints: :func:`edgest.model.model_stats` builds
each model on the meta device and counts one forward pass with ``torch.utils.flop_counter``'s
``FlopCounterMode`` (MACs = FLOPs / 2; convolutions, matmuls and attention, not element-wise ops).
Run: ``python bench/zoo_flops.py [--family vivit] [--out table.md]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def rows(family: str | None = None) -> list[dict[str, str]]:
    """One row per registered model (sorted by family, then MACs)."""
    from edgest.model import model_stats
    from edgest.plugins import get_registry

    out = []
    for name, entry in get_registry().models.items():
        spec = entry.spec
        if family and spec.family != family:
            continue
        stats = model_stats(entry)
        out.append({"family": spec.family, "model": name, "input": "x".join(map(str, spec.input.shape)),
                    "layout": spec.input.layout, "classes": spec.num_classes, "params": stats["params"],
                    "macs": stats["macs"]})
    return sorted(out, key=lambda r: (r["family"], r["macs"], r["model"]))


def markdown(table: list[dict]) -> str:
    """The rows as a Markdown table (params in millions, MACs in G and exact)."""
    lines = ["| family | model | input | layout | classes | params (M) | GMACs | MACs |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for r in table:
        lines.append(f"| {r['family']} | {r['model']} | {r['input']} | {r['layout']} | {r['classes']} | "
                     f"{r['params'] / 1e6:.3f} | {r['macs'] / 1e9:.3f} | {r['macs']:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", help="Only this family (squeezetime, emov2, lmuformer, vivit).")
    parser.add_argument("--out", type=Path, help="Also write the table to this Markdown file.")
    args = parser.parse_args()
    text = markdown(rows(args.family))
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
