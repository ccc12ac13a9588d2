"""Reading a user's YAML file (a dataset YAML, a schema, a rules file) with bounds: one loader
for all of them, so that a hostile file costs the same little everywhere.

- At most `MAX_BYTES` of text.
- Safe construction only (no Python objects), with YAML 1.2's numbers: `1e3` and `1.0e300` are
  floats (PyYAML's YAML 1.1 reads them as strings, which then silently never compare).
- Aliases may share a node, but the document they expand to is bounded (`MAX_NODES`): a few
  hundred bytes of nested aliases can stand for 9^9 references, which any consumer that walks
  the data (validation, `json.dumps`) would expand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from posekit.utils.errors import UserError

#: Largest YAML file read.
MAX_BYTES = 16 << 20
#: Largest number of values a document may expand to (aliases counted as often as used).
MAX_NODES = 1_000_000


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's float syntax (an exponent without a dot, a sign optional)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def expanded_size(data: Any, limit: int = MAX_NODES) -> int:
    """How many values `data` holds with every shared list or mapping counted each time it is
    used (what walking it costs), computed once per shared object; stops counting past
    `limit`."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, list | dict):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:  # a recursive alias: unbounded
            return limit + 1
        active.add(key)
        total = 1
        for child in node.values() if isinstance(node, dict) else node:
            total += size(child)
            if total > limit:
                break
        active.discard(key)
        sizes[key] = total
        return total

    return size(data)


def read_yaml(path: str | Path, error: type[UserError] = UserError) -> Any:
    """The YAML document in `path` (see the module docstring); every problem is one `error`
    naming the file (and the line, where YAML says)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise error(f"{path}: {size} bytes, more than the {MAX_BYTES} a YAML file may have")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise error(f"{path}{line}: invalid YAML: {problem}") from None
    except RecursionError:
        raise error(f"{path}: YAML nested too deeply") from None
    try:
        too_big = expanded_size(data) > MAX_NODES
    except RecursionError:
        too_big = True
    if too_big:
        raise error(
            f"{path}: its aliases expand to more than {MAX_NODES} values (or nest too deeply); "
            "write the values out, or share fewer"
        )
    return data
