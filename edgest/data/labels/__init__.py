"""Class-name lists of the datasets the zoo's releases are trained on, shipped as package data.

One name per line, in the class-index order of the releases: Kinetics-400 and -600, HMDB51 and
Something-Something v2 as in mmaction2's ``tools/data/*/label_map*.txt`` (SqueezeTime is an
mmaction model), Speech Commands v2 (35 words) as in LMUFormer's
``speechcommands_class_labels_indices.csv``. A model's list is chosen by its class count
(:func:`for_classes`), or given as a file (``--labels``, :func:`read_labels`). Ten classes are
edgest's synthetic motion classes (:data:`edgest.data.CLASSES`), what ``edgest train`` teaches
the tiny zoo models.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgest.errors import BadInput

#: class count → (label set file stem, readable dataset name)
DATASETS: dict[int, tuple[str, str]] = {
    400: ("kinetics400", "Kinetics-400"),
    600: ("kinetics600", "Kinetics-600"),
    51: ("hmdb51", "HMDB51"),
    174: ("something_something_v2", "Something-Something v2"),
    35: ("speech_commands_v2", "Speech Commands v2"),
}


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def label_set(stem: str) -> tuple[str, ...]:
    """The class names of a shipped list (``kinetics400``, ...), in class-index order."""
    return _lines(resources.files(__name__).joinpath(f"{stem}.txt").read_text(encoding="utf-8"))


def for_classes(num_classes: int) -> tuple[tuple[str, ...], str] | None:
    """(class names, dataset name) for a model with ``num_classes`` outputs, or None when no list fits."""
    if num_classes == 10:
        from edgest.data.synthetic import CLASSES

        return tuple(CLASSES), "edgest synthetic motion"
    if num_classes in DATASETS:
        stem, name = DATASETS[num_classes]
        return label_set(stem), name
    return None


def read_labels(path: str | Path, num_classes: int | None = None) -> tuple[str, ...]:
    """Class names from a text file (one per line, blank lines skipped); BadInput when unreadable, or when
    ``num_classes`` is given and the count differs."""
    path = Path(path)
    try:
        names = _lines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__
        raise BadInput(f"cannot read labels file '{path}': {why}; give a text file with one class name per line") from None
    if not names:
        raise BadInput(f"labels file '{path}' has no class names; give one class name per line")
    if num_classes is not None and len(names) != num_classes:
        raise BadInput(f"labels file '{path}' has {len(names)} class names but the model has {num_classes} classes; "
                       f"give a file with {num_classes} names, one per line, in class-index order")
    return names
