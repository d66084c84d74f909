"""The quantisation contract's historic import path; the contract lives in :mod:`edgest.quantize`.

Targets written against ``edgest.quantization`` keep working: every public name is re-exported.
"""

from edgest.quantize import *  # noqa: F403
from edgest.quantize import __all__  # noqa: F401
from edgest.quantize.sensitivity import _db, _noise  # noqa: F401 - used by tests of the sensitivity maths
