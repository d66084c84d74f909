"""The user's own labelled clips (``--eval DIR``): found and checked at plan time, read as the task set at build.

Two layouts:

* ``DIR/<class>/*.mp4`` (any video :data:`~edgest.data.video.VIDEO_SUFFIXES`; ``.npy`` clips too),
  labelled by folder name;
* ``DIR/labels.csv`` with a ``file,label`` header: each row a file relative to ``DIR`` (a video or
  a ``.npy`` clip) and its class.

A class (folder name or ``label``) is a name of the model's class list (:mod:`edgest.data.labels`,
chosen by its class count; ``_`` and spaces alike, case ignored), a class index ``0..N-1``, or,
when the set has exactly the model's N classes under other names, the names in sorted order
(torchvision's ``ImageFolder`` rule). Videos are read with the model's preprocessing
(:func:`edgest.data.preprocessing.read_clip`); a ``.npy`` clip is one input already preprocessed:
float, the model's input shape without the batch axis (or with a batch of 1).

:func:`scan` checks everything that can be checked without decoding (empty folder, missing
files, classes that do not fit the model, clips that do not open or ``.npy`` headers of the wrong
shape) so bad input is refused before any work;
:func:`task_set` reads the clips. A set bigger than :func:`~edgest.data.calibration.hold_bytes`
is written, one decoded clip at a time, to a temporary memory-mapped file that the checks read
from, so a folder of thousands of clips costs disk, not memory.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgest import resources
from edgest.data.tasks import TaskSet
from edgest.data.video import VIDEO_SUFFIXES
from edgest.errors import BadInput
from edgest.records import ModelSpec

#: the labels file of the ``file,label`` layout
LABELS_FILE = "labels.csv"


@dataclass(frozen=True)
class EvalSet:
    """A labelled clip set, checked against one model: files, their class indices, the names of those classes."""

    root: Path
    files: tuple[Path, ...]
    labels: tuple[int, ...]
    #: class index → name, for the classes in the set
    class_names: dict[int, str]
    #: how names became indices (``Kinetics-400 class names``, ``class indices``, ``folder names in sorted order``)
    mapping: str

    def per_class(self) -> dict[str, int]:
        """Clips per class, by class name, in class-index order."""
        counts = Counter(self.labels)
        return {self.class_names[i]: counts[i] for i in sorted(counts)}

    def describe(self) -> str:
        """``24 clips in DIR (3 classes, edgest synthetic motion classes)``."""
        return f"{len(self.files)} clips in {self.root} ({len(set(self.labels))} classes, {self.mapping})"


def fingerprint(evalset: EvalSet) -> str:
    """A digest of the set's files (path, size, modification time) and labels: a cache key that changes with the clips."""
    import hashlib

    digest = hashlib.sha256()
    for path, label in zip(evalset.files, evalset.labels):
        st = path.stat()
        digest.update(f"{_name_in(path, evalset.root)}\0{st.st_size}\0{st.st_mtime_ns}\0{label}\n".encode())
    return digest.hexdigest()[:16]


def _name_in(path: Path, root: Path) -> str:
    """``path`` relative to the eval folder (a moved folder keeps its key), or absolute when a labels file names
    a clip outside it (``/data/k400/a.mp4``: allowed, as dataset lists often are)."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path.resolve())


def _is_clip_file(path: Path) -> bool:
    return path.is_file() and (path.suffix.lower() in VIDEO_SUFFIXES or path.suffix.lower() == ".npy")


def scan(folder: str | Path, spec: ModelSpec) -> EvalSet:
    """The labelled clips in ``folder`` for the model of ``spec``; one-line BadInput for a folder it cannot use."""
    root = Path(folder)
    if not root.is_dir():
        raise BadInput(f"eval folder '{root}' does not exist or is not a folder; give a folder of class folders "
                       f"(DIR/<class>/*.mp4) or of clips listed in DIR/{LABELS_FILE}")
    files, names = _from_labels_file(root) if (root / LABELS_FILE).is_file() else _from_class_folders(root)
    if not files:
        raise BadInput(f"eval folder '{root}' has no clips; put videos (.mp4, .avi, .mkv) or .npy clips in class "
                       f"folders DIR/<class>/, or list them in DIR/{LABELS_FILE} (header file,label)")
    videos = [f for f in files if f.suffix.lower() != ".npy"]
    if videos and not _takes_clips(spec):
        raise BadInput(f"eval folder '{root}' holds videos ({videos[0].name}), but model '{spec.name}' takes "
                       f"{'x'.join(map(str, spec.input.shape))} {spec.input.layout or ''} inputs, not RGB clips; "
                       "give .npy inputs of its shape instead".replace("  ", " "))
    labels, class_names, mapping = _class_indices(root, names, spec)
    _probe(files, tuple(spec.input.shape[1:]))
    return EvalSet(root, tuple(files), tuple(labels), class_names, mapping)


def _probe(files: list[Path], clip_shape: tuple[int, ...]) -> None:
    """Open every clip without decoding it (a few ms each): an empty, cut or mislabelled file is refused here,
    before the model is built, not after the reference run; a damaged end inside a readable file is found at build."""
    from edgest.data.video import probe

    for path in files:
        if path.suffix.lower() == ".npy":
            _npy_header(path, clip_shape)
        else:
            probe(path)


def _takes_clips(spec: ModelSpec) -> bool:
    from edgest.data.preprocessing import for_spec

    return for_spec(spec) is not None


def _from_class_folders(root: Path) -> tuple[list[Path], list[str]]:
    top = sorted(p.name for p in root.iterdir() if _is_clip_file(p))
    if top:
        raise BadInput(f"eval folder '{root}' has unlabelled clips at its top ({', '.join(top[:3])}); move each into "
                       f"a folder named after its class (DIR/<class>/), or list them in DIR/{LABELS_FILE}")
    files = sorted(p for d in root.iterdir() if d.is_dir() for p in d.iterdir() if _is_clip_file(p))
    return files, [p.parent.name for p in files]


def _from_labels_file(root: Path) -> tuple[list[Path], list[str]]:
    path = root / LABELS_FILE
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel's "CSV UTF-8" starts with a BOM
            reader = csv.DictReader(f, skipinitialspace=True)
            header = [h.strip() for h in reader.fieldnames or []]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInput(f"cannot read labels file '{path}': {getattr(exc, 'strerror', None) or exc}; "
                       "write it as CSV with a header file,label") from None
    if header and not {"file", "label"} <= set(header):
        raise BadInput(f"labels file '{path}' has columns {', '.join(header)}; its header must be file,label")
    files, names, missing = [], [], []  # missing: the names as the file writes them
    for row in rows:
        name, label = (row.get("file") or "").strip(), (row.get("label") or "").strip()
        if not name or not label:
            raise BadInput(f"labels file '{path}' has a row without a file or a label ({dict(row)}); give both on every row")
        file = root / name
        if _is_clip_file(file):
            files.append(file)
        else:
            missing.append(name)
        names.append(label)
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise BadInput(f"labels file '{path}' names {len(missing)} file(s) that are missing or not clips ({shown}); "
                       "fix those rows (relative paths start at the eval folder; videos or .npy files)")
    return files, names


def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def _class_indices(root: Path, names: list[str], spec: ModelSpec) -> tuple[list[int], dict[int, str], str]:
    """Class index of each name, the names of the indices used, and how they were matched (module docstring)."""
    from edgest.data.labels import for_classes

    n, distinct = spec.num_classes, sorted(set(names))
    known = for_classes(n) if n >= 2 else None
    index = {_norm(c): i for i, c in enumerate(known[0])} if known else {}
    found = {c: index[_norm(c)] if _norm(c) in index else int(c) for c in distinct
             if _norm(c) in index or (c.isdigit() and (n < 2 or int(c) < n))}
    if len(found) == len(distinct):
        by_name = any(_norm(c) in index for c in distinct)
        how = f"{known[1]} class names" if known and by_name else "class indices"
        return [found[c] for c in names], {i: known[0][i] if known else str(i) for i in found.values()}, how
    if len(distinct) == n or n < 2:
        order = {c: i for i, c in enumerate(distinct)}
        return [order[c] for c in names], dict(enumerate(distinct)), "class names in sorted order"
    preview = ", ".join(distinct[:4]) + (", ..." if len(distinct) > 4 else "")
    unknown = [c for c in distinct if c not in found]
    what = f"{known[1]} class names or indices" if known else "class indices"
    if len(distinct) == 1:
        raise BadInput(f"eval folder '{root}' has one class ({preview}), not among the {what} of model "
                       f"'{spec.name}'; name the class folder after one of the model's classes (or its index 0..{n - 1})")
    raise BadInput(f"eval folder '{root}' has {len(distinct)} classes ({preview}) but model '{spec.name}' has {n}, and "
                   f"{', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''} are not {what}; name the classes after "
                   f"the model's (or 0..{n - 1}), or compile a model with {len(distinct)} classes "
                   f"(--model-option num_classes={len(distinct)})")


def task_set(evalset: EvalSet, spec: ModelSpec) -> TaskSet:
    """The clips of ``evalset`` as the compile's labelled task set: B clips per input, read one at a time.

    Held in memory when the set fits :func:`~edgest.data.calibration.hold_bytes`, else written to a
    temporary memory-mapped file (removed with the set). BadInput naming a clip that cannot be read.
    """
    from edgest.data.calibration import hold_bytes

    shape = tuple(spec.input.shape)
    batch = shape[0]
    calls = len(evalset.files) // batch
    if calls < 1:
        raise BadInput(f"eval folder '{evalset.root}' has {len(evalset.files)} clips; one input of model "
                       f"'{spec.name}' takes {batch}")
    per_call = resources.tensor_bytes(shape)
    held = calls * per_call <= hold_bytes()
    store, folder = (np.empty((calls, *shape), np.float32), None) if held else _memmap(calls, shape, per_call)
    read = _reader(spec)
    for c in range(calls):
        for b in range(batch):
            store[c, b] = read(evalset.files[c * batch + b])
    if folder is not None:
        store.flush()
        store = np.load(folder / "clips.npy", mmap_mode="c")  # copy-on-write: torch takes it without a warning
    labels = np.asarray(evalset.labels[:calls * batch], np.int64).reshape(calls, batch)
    left = len(evalset.files) - calls * batch
    source = evalset.describe() + (f", {left} left out (batches of {batch})" if left else "") + f"; {_read_how(evalset, spec)}"
    tasks = TaskSet([[store[c]] for c in range(calls)], list(labels), source, evalset.per_class(), "eval")
    if folder is not None:
        weakref.finalize(tasks, shutil.rmtree, folder, True)
    return tasks


def _memmap(calls: int, shape: tuple[int, ...], per_call: int) -> tuple[np.ndarray, Path]:
    resources.check_free_disk(tempfile.gettempdir(), calls * per_call, "the decoded eval clips",
                              "free some space, point TMPDIR to a disk with room, or use fewer clips")
    folder = Path(tempfile.mkdtemp(prefix="edgest-eval-"))
    return np.lib.format.open_memmap(folder / "clips.npy", mode="w+", dtype=np.float32, shape=(calls, *shape)), folder


def _read_how(evalset: EvalSet, spec: ModelSpec) -> str:
    from edgest.data.preprocessing import describe, for_spec

    prep = for_spec(spec)
    videos = any(f.suffix.lower() != ".npy" for f in evalset.files)
    return f"videos read as {describe(prep)}" if videos and prep is not None else ".npy clips as given"


def _reader(spec: ModelSpec) -> Callable[[Path], np.ndarray]:
    """``read(path)``: one clip of ``spec``'s input without the batch axis, from a video or a ``.npy`` file."""
    from edgest.data.preprocessing import for_spec, read_clip

    prep, clip_shape = for_spec(spec), tuple(spec.input.shape[1:])

    def read(path: Path) -> np.ndarray:
        if path.suffix.lower() != ".npy":
            assert prep is not None  # scan() refused videos for a model that takes no clips
            return read_clip(path, prep)
        return load_npy_clip(path, clip_shape)

    return read


def load_npy_clip(path: Path, clip_shape: tuple[int, ...]) -> np.ndarray:
    """A ``.npy`` clip of ``clip_shape`` (a leading batch axis of 1 allowed), float32; BadInput naming the file."""
    from edgest.finite import array_problem

    out = np.array(_npy_header(path, clip_shape), dtype=np.float32)
    problem = array_problem(out)
    if problem:
        raise BadInput(f"eval clip '{path}' holds {problem}; fix or remove that file")
    return out


def _npy_header(path: Path, clip_shape: tuple[int, ...]) -> np.ndarray:
    """The ``.npy`` clip at ``path`` memory-mapped, without its batch axis of 1; BadInput unless float ``clip_shape``."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BadInput(f"eval clip '{path}' is not a readable .npy array: {str(exc).splitlines()[0][:120]}") from None
    if arr.shape == (1, *clip_shape):
        arr = arr[0]
    if arr.shape != clip_shape or not np.issubdtype(arr.dtype, np.floating):
        raise BadInput(f"eval clip '{path}' is {arr.dtype} {'x'.join(map(str, arr.shape)) or 'scalar'}; the model takes "
                       f"float {'x'.join(map(str, clip_shape))} clips (preprocessed; or give the video itself)")
    return arr


def check_label_range(tasks: TaskSet, outputs: list[np.ndarray], where: str) -> None:
    """BadInput when a label is past the model's outputs (a user's model declares no class count)."""
    width = int(np.asarray(outputs[0]).shape[-1]) if outputs else 0
    top = max(int(lab.max()) for lab in tasks.labels) if tasks.labels else -1
    if top >= width:
        raise BadInput(f"the eval set has class {top}, but {where} gives {width} scores per clip; "
                       f"use class indices 0..{width - 1}")
