"""coremltools imported without the other frameworks it probes for and edgest never converts from.

``import coremltools`` runs ``coremltools._deps``, which imports every framework coremltools has a
converter or a flag for (scikit-learn, XGBoost, libsvm, TensorFlow, transformers) only to set
``_HAS_SKLEARN``, ``_HAS_XGBOOST``, ``_HAS_TF_2``, ``_HAS_HF`` and the like. edgest hands coremltools a
``torch.export`` program and nothing else, yet where those frameworks are installed (ExecuTorch and NNCF
bring scikit-learn) their imports were 2.3-3 s of coremltools' 4.2-4.8 s (``python -X importtime``;
``python bench/check_cold_costs.py`` prints the import with and without this module). The conversion and
the coverage used to hide scikit-learn and XGBoost around their own ``import coremltools``; every other
way in (the MIL reference interpreter, compression, the device runner, a test) paid them all, and every
way paid transformers (0.6-0.9 s here).

:func:`install` (called when the plugin loads) puts a one-shot finder on ``sys.meta_path``
(:mod:`edgest.lean_import`): while ``coremltools._deps`` runs, the first time in the process, an import
of one of :data:`HIDDEN` that is not already imported fails as if it were not installed. Nothing else
changes: before and after, those frameworks import as usual, and one already imported is seen by coremltools as before. In an edgest
process coremltools' own scikit-learn, XGBoost, libsvm and TensorFlow converters are therefore off
(its torch converter, the only one edgest calls, does not read those flags; ``source="auto"`` picks
torch as it does where TensorFlow is absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from edgest import lean_import

#: top-level packages ``coremltools._deps`` imports only to set its converter flags
HIDDEN = ("sklearn", "xgboost", "libsvm", "tensorflow", "transformers")
_DEPS = "coremltools._deps"


def hidden(names: Sequence[str] = HIDDEN) -> AbstractContextManager[None]:
    """While inside, importing one of ``names`` not already imported raises ``ModuleNotFoundError``."""
    return lean_import.hidden(names)


def install() -> None:
    """Hide :data:`HIDDEN` from coremltools' first import in this process (nothing once it is imported)."""
    lean_import.install(_DEPS, HIDDEN)


def uninstall() -> None:
    """Take the finder off ``sys.meta_path`` (it acts once; this also undoes :func:`install` before that)."""
    lean_import.uninstall(_DEPS)
