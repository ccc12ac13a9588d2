"""Bounds on the sizes that files declare, checked before memory is allocated.

A model description (a checkpoint's, an ONNX file's metadata, a transformers `config.json`)
is input like any other: `depth: 1e6` must not make posekit build a million blocks, nor
`width: 1e4` ask for terabytes. Two guards, both applied before any weight exists:

- every structural field of a model config has a declared range (`ranged`), checked when the
  config is made (`check_ranges`), so a value outside it is one line naming the field;
- the model is then built on PyTorch's meta device (shapes only, no memory) and its parameter
  count compared with `MAX_PARAMETERS` (`within_budget`) before the real build.

Each bound's error names the environment variable that raises it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

from posekit.utils.errors import UserError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Limit:
    """A bound with a default that an environment variable can raise (or lower)."""

    env: str
    default: int
    what: str  # e.g. "parameters"

    def value(self) -> int:
        raw = os.environ.get(self.env)
        if raw is None or raw.strip() == "":
            return self.default
        try:
            n = int(raw.replace("_", ""))
        except ValueError:
            raise UserError(f"{self.env}={raw!r} is not a whole number") from None
        if n <= 0:
            raise UserError(f"{self.env}={raw!r} must be positive")
        return n


#: ViTPose-H, the largest published model posekit loads, has 0.63 billion parameters.
MAX_PARAMETERS = Limit("POSEKIT_MAX_PARAMETERS", 2_000_000_000, "parameters")
#: Pixels of one network input a model file may declare (2048 x 2048): what every activation's
#: memory scales with (a pafpose at 8192 takes 6.6 GB for one small image).
MAX_INPUT_PIXELS = Limit("POSEKIT_MAX_INPUT_PIXELS", 2048 * 2048, "input pixels")


#: Largest coordinate, in pixels, a file or a request may give (a box, a detection).
MAX_COORDINATE = 1e6


def is_number(x: Any) -> bool:
    """An int or a float (JSON's numbers), not a boolean."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def ranged(default: Any, low: float, high: float) -> Any:
    """A dataclass field whose value (each element, for a tuple) must lie in [low, high];
    a field whose default is None may also be None ("not set")."""
    return field(default=default, metadata={"range": (low, high)})


def check_ranges(config: Any, what: str) -> None:
    """Raise a one-line `ValueError` for the first field of `config` outside its declared
    range (or not a finite number); `what` names the config in the message."""
    for f in fields(config):
        bounds = f.metadata.get("range")
        if bounds is None:
            continue
        value = getattr(config, f.name)
        if value is None and f.default is None:
            continue
        items = value if isinstance(value, tuple | list) else (value,)
        low, high = bounds
        for v in items:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or not low <= v <= high:
                raise UserError(f"{what}: {f.name} = {value!r} is outside its range "
                                 f"[{low:g}, {high:g}]")  # fmt: skip


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta_build(build: Callable[[], T], what: str) -> T:
    """`build()` on the meta device (shapes, no memory), refused in one line when its
    parameter count is above `MAX_PARAMETERS`: a caller can compare shapes with it before
    anything is allocated."""
    import torch  # here: the config ranges above are read by the CLI, which starts without torch

    limit = MAX_PARAMETERS.value()
    with torch.device("meta"):
        probe = build()
    n = count_parameters(probe)  # type: ignore[arg-type]
    if n > limit:
        raise UserError(
            f"{what} would have {n:,} parameters, more than the limit of {limit:,} (set "
            f"{MAX_PARAMETERS.env} to allow larger models)"
        )
    return probe


def within_budget(build: Callable[[], T], what: str) -> T:
    """`build()`, after a build on the meta device has shown that its parameter count is
    within `MAX_PARAMETERS`."""
    meta_build(build, what)
    return build()
