"""The documentation of a settings dataclass's fields, read from its source once, so that CLI
help, API errors and the server's form fields all show the same text as the code."""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import fields


@functools.cache
def field_comments(config: type) -> dict[str, str]:
    """The comment that documents each field of a settings dataclass in its source (the one
    at the end of its line, or the lines just above it), so that option help is the same
    text as the code's, written once."""
    try:
        lines = inspect.getsource(config).splitlines()
    except (OSError, TypeError):
        return {}
    names = {f.name for f in fields(config)}
    out: dict[str, str] = {}
    above: list[str] = []
    for line in lines:
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("#").strip())
            continue
        match = re.match(r"(\w+)\s*:", text)
        if match and match[1] in names:
            trailing = text.split("  # ", 1)[1].strip() if "  # " in text else ""
            doc = " ".join(above) if above else trailing
            if doc:
                out[match[1]] = doc[0].upper() + doc[1:] + ("" if doc.endswith(".") else ".")
        above = []
    return out
