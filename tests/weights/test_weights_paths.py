"""A --weights path that is not a readable file says what it is instead (the outside round: a pipe, /dev/zero,
a folder and an empty name all said "does not exist")."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from edgest.errors import BadInput
from edgest.validate import weights_map
from edgest.weights.files import read_checkpoint


def _paths(tmp_path: Path) -> dict[str, tuple[str, str]]:
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    (tmp_path / "empty.pt").write_bytes(b"")
    return {"pipe": (str(fifo), "is a pipe or device"), "device": ("/dev/zero", "is a pipe or device"),
            "folder": (str(tmp_path), "is a folder"), "empty": (str(tmp_path / "empty.pt"), "is empty (0 bytes)"),
            "missing": (str(tmp_path / "nope.pt"), "does not exist"), "blank": (" ", "is an empty name")}


@pytest.mark.parametrize("kind", ["pipe", "device", "folder", "empty", "missing", "blank"])
def test_each_kind_of_non_file_is_named(tmp_path: Path, kind: str) -> None:
    path, words = _paths(tmp_path)[kind]
    with pytest.raises(BadInput, match=re.escape(words)):  # returns at once: a pipe is never opened (it would block)
        read_checkpoint(path)
    if kind != "blank":  # weights_map refuses a blank path as malformed before it gets here
        with pytest.raises(BadInput, match=re.escape(words)):
            weights_map([f"squeezetime_tiny={path}"], ["squeezetime_tiny"])


def test_a_file_of_zeros_is_not_a_checkpoint_in_plain_words(tmp_path: Path) -> None:
    zeros = tmp_path / "zeros.pt"  # the outside round used a 20 GB sparse file: torch's "legacy .tar format" text, cut
    zeros.write_bytes(bytes(4096))
    with pytest.raises(BadInput, match=re.escape("it is not a checkpoint (neither a torch.save zip or pickle, nor "
                                                 "safetensors; it starts with bytes 00 00 00 00 00 00 00 00)")):
        read_checkpoint(zeros)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
def test_a_virtual_file_system_is_not_called_full() -> None:
    from edgest.resources import check_free_disk

    with pytest.raises(BadInput, match="is a virtual file system that holds no files; choose another --out"):
        check_free_disk("/proc/edgest-run", 1000)


def test_numpy_files_are_named_as_numpy_not_checkpoints(tmp_path: Path) -> None:
    import numpy as np

    np.savez(tmp_path / "w.npz", a=[1, 2])
    np.save(tmp_path / "w.npy", np.zeros(3))
    with pytest.raises(BadInput, match=re.escape("is a NumPy archive (.npz), not a checkpoint; if its arrays are named "
                                                 "like the model's state_dict, convert it: torch.save(")):
        read_checkpoint(tmp_path / "w.npz")
    with pytest.raises(BadInput, match=re.escape("is a NumPy array (.npy), not a checkpoint; save a state_dict")):
        read_checkpoint(tmp_path / "w.npy")
