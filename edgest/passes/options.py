"""Parse ``--pass NAME[:key=value,...]`` into ``(name, options)``."""

from __future__ import annotations

import json
from typing import Any

from edgest.errors import BadInput


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pass_arg(text: str) -> tuple[str, dict[str, Any]]:
    """``"quantize:scheme=int8,calib=32"`` → ``("quantize", {"scheme": "int8", "calib": 32})``."""
    name, _, rest = text.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise BadInput(f"malformed pass option '{item}' in '{text}'; write NAME:key=value,key=value")
        options[key.strip()] = _value(value.strip())
    if not name.strip():
        raise BadInput(f"malformed --pass '{text}'; write NAME or NAME:key=value")
    return name.strip(), options
