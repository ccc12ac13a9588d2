"""Optional dependencies: imported where used, with an error that names the install extra."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """`import module`, or `MissingExtraError`: "<purpose> needs <module>: pip install
    'posekit[<extra>]'"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{purpose} needs the {module} package: pip install 'posekit[{extra}]'"
        ) from None


def pyplot(purpose: str = "plots") -> ModuleType:
    """matplotlib's pyplot on the Agg backend (files, no display), from the `plot` extra."""
    matplotlib = require("matplotlib", "plot", purpose)
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "plot", purpose)
