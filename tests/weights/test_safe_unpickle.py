"""Checkpoints holding pickled objects: mmengine's load without mmengine, payloads that would run code are refused.

Markers on disk prove what did not run: a payload touches a file when executed, a module writes
one when imported.
"""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from official_layouts import mmengine_checkpoint, randomize, squeezetime_release

from edgest.errors import BadInput
from edgest.weights import load_weights
from edgest.weights.safe_unpickle import runs_code

HISTORY_BUFFER = '''
import numpy as np


class HistoryBuffer:
    def __init__(self, max_length=1000000):
        self.max_length = max_length
        self._log_history = np.array([2.3, 2.1, 1.9])
        self._count_history = np.array([1, 1, 1])
'''


def _tiny(seed: int = 1):
    from edgest_models.squeezetime import squeezetime_tiny

    torch.manual_seed(0)
    return randomize(squeezetime_tiny(), seed)


def _forget(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        monkeypatch.delitem(sys.modules, name)


def test_mmengine_objects_are_dropped_without_importing_mmengine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "pkgs" / "mmengine" / "logging"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from mmengine.logging.history_buffer import HistoryBuffer\n")
    (pkg / "history_buffer.py").write_text(HISTORY_BUFFER)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    from mmengine.logging import HistoryBuffer  # the fake one, importable only for saving

    source = _tiny()
    hub = {"log_scalars": {"train/loss": HistoryBuffer(), "train/lr": HistoryBuffer()}, "runtime_info": {"epoch": 3},
           "resumed_keys": {"epoch": True}}
    ckpt = mmengine_checkpoint(squeezetime_release(source.state_dict()), {"message_hub": hub})
    ckpt["meta"] |= {"seed": np.int64(42), "best_acc": np.float64(0.71)}
    torch.save(ckpt, tmp_path / "SqueezeTime_K400.pth")
    _forget("mmengine", monkeypatch)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path / "pkgs")])
    (pkg / "history_buffer.py").unlink()  # unimportable from here on
    model = _tiny(9)  # every value differs from the source's
    record = load_weights(model, tmp_path / "SqueezeTime_K400.pth")
    assert "mmengine" not in sys.modules
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
    assert record["dropped_objects"]["mmengine.logging.history_buffer.HistoryBuffer"] == 2
    assert record["counts"]["dropped_objects"] >= 4  # two buffers, two numpy scalars (+ their dtypes)


def _touch_reduce(marker: Path, how: str):
    class Payload:
        def __reduce__(self):
            if how == "os.system":
                return os.system, (f"touch {marker}",)
            if how == "builtins.eval":
                return builtins.eval, (f"__import__('os').system('touch {marker}')",)
            if how == "builtins.exec":
                return builtins.exec, (f"open({str(marker)!r}, 'w').close()",)
            return subprocess.call, (["touch", str(marker)],)

    return Payload()


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("how, named", [("os.system", "posix.system"), ("builtins.eval", "builtins.eval"),
                                        ("builtins.exec", "builtins.exec"), ("subprocess.call", "subprocess.call")])
def test_payload_that_runs_code_is_refused(tmp_path: Path, how: str, named: str, zipped: bool) -> None:
    marker = tmp_path / "PWNED"
    ckpt = mmengine_checkpoint(squeezetime_release(_tiny().state_dict()), {"message_hub": {"x": _touch_reduce(marker, how)}})
    torch.save(ckpt, tmp_path / "evil.pth", _use_new_zipfile_serialization=zipped)
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(BadInput) as err:
        load_weights(model, tmp_path / "evil.pth")
    assert not marker.exists(), "unpickling the weights ran code"
    assert f"cannot read weights '{tmp_path / 'evil.pth'}': its pickle calls {named}, which could run code" in str(err.value)
    assert "\n" not in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_unknown_callable_is_never_imported_or_called(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A global from a module outside the refused list becomes an inert placeholder: not imported, not called."""
    imported, called = tmp_path / "imported", tmp_path / "called"
    (tmp_path / "sidefx.py").write_text(f"open({str(imported)!r}, 'w').close()\n"
                                        f"def run(path):\n    open(path, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import sidefx

    class Call:
        def __reduce__(self):
            return sidefx.run, (str(called),)

    torch.save({"state_dict": _tiny().state_dict(), "hook": Call()}, tmp_path / "w.pth")
    imported.unlink()
    _forget("sidefx", monkeypatch)
    record = load_weights(_tiny(), tmp_path / "w.pth")
    assert not imported.exists() and not called.exists() and "sidefx" not in sys.modules
    assert record["dropped_objects"] == {"sidefx.run": 1} and record["format"] == "edgest"


@pytest.mark.parametrize("name, refused", [
    ("posix.system", True), ("nt.system", True), ("os.popen", True), ("subprocess.Popen", True), ("builtins.eval", True),
    ("builtins.getattr", True), ("builtins.__import__", True), ("importlib.import_module", True), ("functools.partial", True),
    ("builtins.list", False), ("numpy.core.multiarray.scalar", False), ("mmengine.logging.history_buffer.HistoryBuffer", False),
    ("torch.optim.adamw.AdamW", False), ("commands.getoutput", True), ("__builtin__.eval", True), ("cPickle.loads", True),
])
def test_which_globals_count_as_running_code(name: str, refused: bool) -> None:
    assert runs_code(name) is refused
