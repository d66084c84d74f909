"""Model entries and building a model (weights: :mod:`edgest.weights`, re-exported here).

A model plugin registers a :class:`ModelEntry`: a :class:`~edgest.records.ModelSpec` plus a
factory that builds the ``nn.Module``. The factory is imported lazily so that listing models
does not import every model file.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgest.errors import BadInput, PluginError
from edgest.records import ModelSpec
from edgest.weights import load_weights, mismatches  # noqa: F401 - re-exported: their historic import path

if TYPE_CHECKING:
    import torch

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its spec and how to build it.

    ``factory`` is either a callable or a ``"module:function"`` string imported on first use;
    it is called with ``**config`` (``spec.config`` unless a plan resolved model options).
    ``shape_options`` says which config keys an input shape sets, by the spec's layout letters
    (``{"num_frames": "T", "image_size": "H,W"}``), so ``--input-shape`` rebuilds the model
    (:mod:`edgest.model_options`). A family with other rules overrides :meth:`options_for_shape`
    and :meth:`input_shape_for`.
    """

    spec: ModelSpec
    factory: Callable[..., Any] | str
    shape_options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def __post_init__(self) -> None:
        if not _NAME.match(self.spec.name):
            raise PluginError(f"model name '{self.spec.name}' must be lowercase [a-z0-9_]")
        axes = self.spec.input.layout.split(",")
        for key, letters in self.shape_options.items():
            if key not in self.spec.config or not set(letters.split(",")) <= set(axes):
                raise PluginError(f"model '{self.spec.name}': shape_options maps '{key}' to '{letters}'; keys must be in "
                                  f"its config and letters in its layout '{self.spec.input.layout}'")

    def build(self, config: dict[str, Any] | None = None) -> torch.nn.Module:
        """Build the model in eval mode from its deterministic initialisation, with ``config`` (default ``spec.config``)."""
        import torch

        factory = self.factory
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        torch.manual_seed(0)
        return factory(**(self.spec.config if config is None else config)).eval()

    def options_for_shape(self, shape: tuple[int, ...]) -> dict[str, Any]:
        """The options an input ``shape`` of the spec's rank sets: each of ``shape_options`` whose axes agree
        (``image_size`` from H and W only when H == W); an ambiguous one is left out."""
        axes = self.spec.input.layout.split(",")
        out = {}
        for key, letters in self.shape_options.items():
            sizes = {shape[axes.index(a)] for a in letters.split(",")}
            if len(sizes) == 1:
                out[key] = sizes.pop()
        return out

    def input_shape_for(self, config: dict[str, Any]) -> tuple[int, ...]:
        """The spec's input shape with the axes of ``shape_options`` set from ``config``."""
        axes, shape = self.spec.input.layout.split(","), list(self.spec.input.shape)
        for key, letters in self.shape_options.items():
            for a in letters.split(","):
                shape[axes.index(a)] = int(config[key])
        return tuple(shape)


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: torch.nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass, from ``FlopCounterMode`` (which counts 2 per MAC)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(example)
    return counter.get_total_flops() // 2


def model_stats(entry: ModelEntry, spec: ModelSpec | None = None) -> dict[str, int]:
    """Parameters and MACs of ``spec`` (default: the registered one; its config, at its input shape),
    computed on the meta device (no memory, no init cost)."""
    import torch

    spec = spec or entry.spec
    with torch.device("meta"):
        model = entry.build(spec.config)
        example = torch.zeros(spec.input.shape)
        macs = count_macs(model, example)
    return {"params": count_params(model), "macs": int(macs)}


def is_model_file(ref: str) -> bool:
    """True for ``path/to/file.py:Name`` references to a user's own model, and for ``FILE:Name`` naming an existing
    file that is not ``.py`` (so the load says a model file must be Python, instead of "unknown model")."""
    if ".py:" in ref or ref.endswith(".py"):
        return True
    path, colon, _ = ref.rpartition(":")
    return bool(colon and path) and os.path.isfile(path)


@contextlib.contextmanager
def _as_script_import(path: Path) -> Iterator[io.StringIO]:
    """Run a user's file as if it were imported on its own: ``sys.argv == [path]``, its folder on ``sys.path``.

    Its stdout and stderr are captured (yielded: what an argparse call printed), so a file that
    parses arguments or prints at import can neither read edgest's arguments nor print what
    looks like edgest's own usage error, nor spoil ``--json`` output.
    """
    argv, syspath, err, hard_exit = sys.argv, list(sys.path), io.StringIO(), os._exit
    cwd = os.getcwd()  # a file that changes folder at import must not move edgest's run folder with it
    sys.argv = [str(path)]
    sys.path.insert(0, str(path.resolve().parent))
    os._exit = _refuse_hard_exit  # would end edgest without a word, staging and check worker left behind
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), _time_limit():
            yield err
    finally:
        sys.argv, sys.path[:], os._exit = argv, syspath, hard_exit
        if os.getcwd() != cwd:
            os.chdir(cwd)


class HardExit(SystemExit):
    """A user's file called ``os._exit`` while edgest imported or built it."""


class TooSlow(BaseException):
    """A user's file did not finish importing or building in :func:`user_code_seconds` (not an Exception: a
    broad ``except Exception`` in the user's loop must not swallow it)."""


def _refuse_hard_exit(code: int = 0) -> None:
    raise HardExit(code)


def user_code_seconds() -> float:
    """How long a user's file may take to import or build: ``EDGEST_USER_CODE_TIMEOUT_S``, else 300 s."""
    from edgest.environment import user_code_seconds as seconds

    return max(seconds(), 0.1)


@contextlib.contextmanager
def _time_limit() -> Iterator[None]:
    """Raise :class:`TooSlow` in the block after :func:`user_code_seconds` (main thread with SIGALRM only)."""
    import signal
    import threading

    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expired(signum: int, frame: object) -> None:
        raise TooSlow()

    before = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, user_code_seconds())
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def _exited(path: Path, exc: SystemExit, doing: str, stderr: str) -> BadInput:
    why = "; it parses command-line arguments at import?" if "usage:" in stderr.lower() else ""  # argparse's mark
    code = "" if exc.code is None else f" {str(exc.code)[:80]!r}" if not isinstance(exc.code, int) else f" {exc.code}"
    if isinstance(exc, HardExit):
        return BadInput(f"model file '{path}' called os._exit({exc.code}) while {doing}, which would end edgest "
                        f"without a word; {_fix(doing)}")
    return BadInput(f"model file '{path}' exited while {doing} (SystemExit{code}{why}); {_fix(doing)}")


def _too_slow(path: Path, doing: str) -> BadInput:
    return BadInput(f"model file '{path}' did not finish {doing} in {user_code_seconds():g} s (a loop or a download "
                    f"at import?); {_fix(doing)}, or raise EDGEST_USER_CODE_TIMEOUT_S")


def _fix(doing: str) -> str:
    return ('guard its script code with if __name__ == "__main__"' if doing == "being imported"
            else "remove the sys.exit or argument parsing from its constructor")


def check_forward(model: torch.nn.Module, where: str) -> None:
    """BadInput unless ``model.forward`` takes exactly one input tensor (what ``--input-shape`` describes)."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):  # a builtin or C forward: let the eager run say what is wrong
        return
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p.name for p in params if p.default is p.empty and p.kind in (*positional, inspect.Parameter.KEYWORD_ONLY)]
    takes_one = any(p.kind in (*positional, inspect.Parameter.VAR_POSITIONAL) for p in params)
    if len(required) > 1:
        raise BadInput(f"{where}: forward takes {len(required)} inputs ({', '.join(required)}); edgest compiles models with "
                       "one input tensor (shape from --input-shape, input_shape=): wrap it in a module whose forward(x) makes the others")
    if not takes_one:
        raise BadInput(f"{where}: forward takes no input tensor; edgest feeds one (shape from --input-shape, input_shape=): "
                       "define forward(self, x)")


def load_user_model(ref: str) -> torch.nn.Module:
    """Import ``file.py:Name`` and return ``Name()`` (a class or a zero-argument function) in eval mode.

    The file is imported with ``sys.argv == [file]`` and its output captured; one that exits
    (``sys.exit``, argparse) while imported or built, or whose forward takes other than one
    input, is a one-line BadInput.
    """
    import importlib.util

    import torch

    path_text, _, attr = ref.rpartition(":") if not ref.endswith(".py") else (ref, "", "")
    path = Path(path_text)
    if not attr:
        raise BadInput(f"model file reference '{ref}' names no class; write {ref}:ClassName")
    if not path.is_file():
        raise BadInput(f"model file '{path}' does not exist; write --model (model=) path/to/file.py:ClassName")
    spec = importlib.util.spec_from_file_location(f"edgest_user_model_{abs(hash(str(path.resolve())))}", path)
    if spec is None or spec.loader is None:
        raise BadInput(f"model file '{path}' cannot be imported as Python; give a .py file")
    module = importlib.util.module_from_spec(spec)
    with _as_script_import(path) as err:
        try:
            spec.loader.exec_module(module)
        except SystemExit as exc:
            raise _exited(path, exc, "being imported", err.getvalue()) from None
        except TooSlow:
            raise _too_slow(path, "being imported") from None
        except Exception as exc:  # noqa: BLE001 - the user's file is broken: say so in one line
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BadInput(f"cannot import model file '{path}': {type(exc).__name__}: {text[:200]}; fix the file and retry") from None
    if not hasattr(module, attr):
        names = sorted(n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module.__name__)
        raise BadInput(f"model file '{path}' has no '{attr}'; nn.Module classes in it: {', '.join(names) or '(none)'}")
    torch.manual_seed(0)
    with _as_script_import(path) as err:
        try:
            model = getattr(module, attr)()
        except SystemExit as exc:
            raise _exited(path, exc, f"building '{attr}'", err.getvalue()) from None
        except TooSlow:
            raise _too_slow(path, f"building '{attr}'") from None
        except Exception as exc:  # noqa: BLE001
            raise BadInput(f"cannot build '{attr}' from '{path}': {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(model, torch.nn.Module):
        raise BadInput(f"'{attr}' in '{path}' did not return an nn.Module (got {type(model).__name__})")
    check_forward(model, f"model '{attr}' in '{path}'")
    return model.eval()
