"""Parse ``--pass NAME[:key=value,...]`` into ``(name, options)``.

Values stay text (:class:`edgest.options.Text`) until the pass is built: the pass's
``option_table`` then types them (``calibration_size=16`` → 16) or refuses them, so the
parser needs no registry and a typo is caught by the pass that owns the option.
"""

from __future__ import annotations

from typing import Any

from edgest.errors import BadInput
from edgest.options import Text


def parse_pass_arg(text: str) -> tuple[str, dict[str, Any]]:
    """``"quantize:scheme=int8,calibration_size=32"`` → ``("quantize", {"scheme": Text("int8"), ...})``."""
    name, _, rest = text.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise BadInput(f"malformed pass option '{item}' in '{text}'; write NAME:key=value,key=value")
        if key.strip() in options:
            raise BadInput(f"pass option '{key.strip()}' is given twice in '{text}'; give each option once")
        options[key.strip()] = Text(value.strip())
    if not name.strip():
        raise BadInput(f"malformed --pass '{text}'; write NAME or NAME:key=value")
    return name.strip(), options
