"""Run folders and weights travel by content: inline when small, through the shared store when large, checked on arrival."""

from __future__ import annotations

import dataclasses

import pytest

from edgest.errors import BadInput
from edgest.executors import transfer


def _folder(tmp_path):
    src = tmp_path / "run"
    (src / "pkg").mkdir(parents=True)
    (src / "report.json").write_text("{}")
    (src / "pkg" / "weights.bin").write_bytes(b"\x01" * 4096)
    return src


def test_small_files_travel_inline_and_large_ones_through_the_store_by_sha256(tmp_path):
    store = tmp_path / "store"
    files = transfer.pack_folder(_folder(tmp_path), store, inline_limit=1024)
    small, large = files["report.json"], files["pkg/weights.bin"]
    assert small.data == b"{}" and not small.stored
    assert large.data is None and large.stored == str(store / large.sha256[:2] / large.sha256)
    transfer.unpack_folder(files, tmp_path / "back")
    assert (tmp_path / "back" / "pkg" / "weights.bin").read_bytes() == b"\x01" * 4096
    assert (tmp_path / "back" / "report.json").read_text() == "{}"


def test_a_damaged_file_or_a_name_outside_the_folder_is_refused(tmp_path):
    files = transfer.pack_folder(_folder(tmp_path))
    bad = dataclasses.replace(files["report.json"], data=b"{ }")
    with pytest.raises(BadInput, match="arrived damaged"):
        transfer.unpack_folder({"report.json": bad}, tmp_path / "back")
    with pytest.raises(BadInput, match="not inside the run folder"):
        transfer.unpack_folder({"../evil": files["report.json"]}, tmp_path / "back")


def test_a_node_keeps_a_fetched_file_once_by_its_sha256(tmp_path):
    blob = transfer.pack(_folder(tmp_path) / "report.json")
    first = transfer.cached(blob, tmp_path / "cache")
    assert first == tmp_path / "cache" / blob.sha256 and first.read_text() == "{}"
    assert transfer.cached(dataclasses.replace(blob, data=None), tmp_path / "cache") == first  # no second copy needed
