"""Where LiteRT's ``lower`` stage spends its seconds: litert-torch's own progress tree for one model.

edgest's LiteRT lowering is ``litert_torch.convert`` on the captured program's module
(:mod:`edgest_litert.convert`), which edgest runs with litert-torch's progress tree off. This builds
and captures the model as ``edgest compile`` does (fp32, random init), then converts it with the
tree on, so each of litert-torch's steps prints its own seconds (its re-export, each
``run_decompositions`` re-trace, the FX passes, the MLIR lowering, the TFLite converter passes).

    python bench/litert_convert_stages.py [--model squeezetime] [--out /tmp/edgest-litert-stages.tflite]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from edgest.host import cpu_model, isa_summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="squeezetime")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "edgest-litert-stages.tflite")
    args = parser.parse_args()
    import litert_torch
    import torch

    from edgest.capture import capture
    from edgest.plan import plan

    print(f"Host: {cpu_model()}, {os.cpu_count()} cores; ISA: {isa_summary()}; litert-torch {litert_torch.__version__}")
    compiled = plan(args.model, "litert", out_dir=args.out.parent / "unused")
    example = (torch.randn(*compiled.spec.input.shape),)
    program = capture(compiled.build_module(), example)
    litert_torch.config.show_progress = True
    start = time.perf_counter()
    litert_torch.convert(program.module(), example).export(str(args.out))
    print(f"{args.model}: litert_torch.convert and export {time.perf_counter() - start:.1f} s → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
