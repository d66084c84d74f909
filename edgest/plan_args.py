"""Type checks of :func:`edgest.plan.plan`'s arguments for Python callers.

The CLI types its options itself (click); a Python caller can pass anything, and a wrong type must
be one :class:`~edgest.errors.BadInput` line naming the argument, not a traceback from deep inside
(difflib on a non-string name, the JSON writer on an object in the target options, ...).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from edgest.errors import BadInput

#: the largest seed NumPy's and torch's generators both take
MAX_SEED = 2**32 - 1


def _kind(value: Any) -> str:
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_model_and_target(model: Any, target: Any) -> None:
    """``model`` is a name, ``file.py:Class`` or an nn.Module; ``target`` a name."""
    import torch

    if not isinstance(model, (str, torch.nn.Module)) or (isinstance(model, str) and not model.strip()):
        raise BadInput(f"model= must be a registered model name, 'file.py:Class' or an nn.Module; got {_kind(model)} "
                       f"{model!r:.60}")
    if not isinstance(target, str) or not target.strip():
        raise BadInput(f"target= must be a target name (see `edgest list targets`); got {_kind(target)} {target!r:.60}")


def check_passes(passes: Any) -> None:
    """Each pass is a name, a ``(name, options)`` pair or a Pass instance."""
    from edgest.passes.base import Pass

    if isinstance(passes, (str, bytes)) or not isinstance(passes, Sequence):
        raise BadInput(f"passes= must be a list of pass names; got {_kind(passes)} {passes!r:.60}")
    for p in passes:
        ok = isinstance(p, (str, Pass)) or (isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                                             and isinstance(p[1], Mapping))
        if not ok:
            raise BadInput(f"passes= item {p!r:.60} is a {_kind(p)}; give a pass name, (name, {{options}}) or a Pass")


def check_paths(**paths: Any) -> None:
    """Each of ``paths`` (argument name → value) is None, a str or an os.PathLike of str."""
    for name, value in paths.items():
        if value is None:
            continue
        if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)) or isinstance(os.fspath(value), bytes):
            raise BadInput(f"{name}= must be a path (str or pathlib.Path); got {_kind(value)} {value!r:.60}")
        if isinstance(value, str) and not value.strip():
            raise BadInput(f"{name}= is empty; give a path")


def check_shape(shape: Any) -> None:
    """``input_shape`` is None, text (parsed later) or a sequence of positive ints."""
    if shape is None or isinstance(shape, str):
        return
    if not isinstance(shape, Sequence) or not shape or not all(_is_int(d) and d > 0 for d in shape):
        raise BadInput(f"input_shape= must be positive whole numbers, e.g. (1, 3, 16, 112, 112) or '1x3x16x112x112'; "
                       f"got {shape!r:.60}")


def check_numbers(seed: Any, threads: Any, samples: Any, check_timeout_s: Any) -> None:
    """Seeds the generators take, whole counts, and a finite positive timeout."""
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise BadInput(f"seed= must be a whole number from 0 to {MAX_SEED}; got {seed!r:.40}")
    for name, value in (("threads", threads), ("samples", samples)):
        if not _is_int(value):
            raise BadInput(f"{name}= must be a whole number; got {_kind(value)} {value!r:.40}")
    ok = isinstance(check_timeout_s, (int, float)) and not isinstance(check_timeout_s, bool)
    if not ok or not math.isfinite(check_timeout_s) or check_timeout_s <= 0:
        raise BadInput(f"check_timeout_s= must be a finite number of seconds above 0; got {check_timeout_s!r:.40}")


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def check_target_options(options: Any) -> None:
    """Target options are text keys with plain values (text, numbers, booleans, lists of them): they go into the
    report as JSON, so an object there would fail after the compile."""
    if options is None:
        return
    if not isinstance(options, Mapping):
        raise BadInput(f"target_options= must be a dict of option name → value; got {_kind(options)}")
    for key, value in options.items():
        if not isinstance(key, str) or not key:
            raise BadInput(f"target_options= key {key!r:.40} must be an option name (text)")
        if ":" in key:
            raise BadInput(f"target_options= key '{key}': the TARGET:KEY form is the CLI's; here give the options "
                           f"of the one target compiled, e.g. {{'{key.rpartition(':')[2]}': ...}}")
        if not _plain(value):
            raise BadInput(f"target option {key}={value!r:.40} is a {_kind(value)}; give text, a finite number, "
                           "a boolean or a list of those")


def check_all(model: Any, target: Any, passes: Any, input_shape: Any, out_dir: Any, weights: Any, eval_dir: Any,
              seed: Any, threads: Any, samples: Any, check_timeout_s: Any, target_options: Any) -> None:
    """Every type check above, in the order of plan()'s arguments; then the EDGEST_* environment variables."""
    from edgest.environment import check_environment

    check_model_and_target(model, target)
    check_passes(passes)
    check_shape(input_shape)
    check_paths(out_dir=out_dir, weights=weights, eval_dir=eval_dir)
    check_numbers(seed, threads, samples, check_timeout_s)
    check_target_options(target_options)
    check_environment()


def check_bench(models: Any, targets: Any, precisions: Any, out_dir: Any, weights: Any, threads: Any, samples: Any) -> None:
    """:func:`edgest.bench.run_bench`'s arguments: non-empty lists of names, a folder, weights as model → path,
    whole counts of at least 1 (the CLI refuses the same with its own option names)."""
    for name, names in (("models", models), ("targets", targets), ("precisions", precisions)):
        if isinstance(names, (str, bytes)) or not isinstance(names, Sequence) or not names:
            raise BadInput(f"{name}= must be a non-empty list of names; got {names!r:.60}")
        if not all(isinstance(n, str) and n.strip() for n in names):
            raise BadInput(f"{name}= holds {next(n for n in names if not (isinstance(n, str) and n.strip()))!r:.40}, "
                           "not a name")
    check_paths(out_dir=out_dir)
    if out_dir is None:
        raise BadInput("out_dir= is needed: the bench's folder")
    from edgest.environment import check_environment

    check_environment()
    if weights is not None and not isinstance(weights, Mapping):
        raise BadInput(f"weights= must be a dict of model name → checkpoint path; got {_kind(weights)}")
    for model, path in (weights or {}).items():
        check_paths(**{f"weights[{model!r}]": path})
    for name, value in (("threads", threads), ("samples", samples)):
        if not _is_int(value) or value < 1:
            raise BadInput(f"{name}= must be a whole number of at least 1; got {value!r:.40}")
