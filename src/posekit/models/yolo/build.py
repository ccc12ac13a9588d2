"""Build a YOLO network from its architecture description, in plain Python.

The description is the one Ultralytics stores in every checkpoint (and publishes as model
YAMLs): rows `[from, repeats, module, args]` for the backbone and the head, compound scales
`[depth, width, max_channels]`, and `nc`, `kpt_shape`, `reg_max`, `end2end`. Each module name
maps to one builder in `BUILDERS` (a table, never a name lookup in globals), which applies the
scaling rules of the published architectures:

- a repeated block's count is `max(round(n * depth), 1)` (counts of 1 stay 1);
- a block's output channels are `ceil(min(c, max_channels) * width / 8) * 8`;
- YOLO11/26 blocks (`C3k2`) use `C3k` inner blocks at sizes m, l and x, and their presence
  selects the depth-wise class branch of the head (YOLOv8's is "legacy");
- `SPPF` rows of two arguments are the original block (activation after the first
  convolution); YOLO26's four-argument rows have none there and a residual.

Everything read from a file is bounded before anything is built (rows, repeats, kernel sizes;
the parameter count is the caller's `within_budget`).
"""

from __future__ import annotations

import ast
import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from posekit.models.blocks import ConvBNAct
from posekit.models.yolo.blocks import C2PSA, SPPF, C2f, C3k2, Concat
from posekit.models.yolo.head import YOLOHead
from posekit.utils.errors import UserError

MAX_ROWS = 256
MAX_REPEATS = 64
MAX_KERNEL = 15
HEADS = {"Detect": False, "Pose": False, "Pose26": True}  # name -> YOLO26 pose decode


@dataclass(frozen=True)
class Scaling:
    """What the rows' numbers are scaled by, and the model-wide facts the builders need."""

    depth: float
    width: float
    max_channels: int
    scale: str  # the size letter ("n" ... "x"), which picks C3k2's inner block
    nc: int
    num_keypoints: int
    kpt_dims: int
    reg_max: int
    end2end: bool

    def channels(self, c: Any) -> int:
        return int(math.ceil(min(_int(c, "channels"), self.max_channels) * self.width / 8) * 8)

    def repeats(self, n: int) -> int:
        return max(round(n * self.depth), 1) if n > 1 else n


@dataclass
class Layer:
    """One built row: the module, where its input comes from, its output channels and stride."""

    module: nn.Module
    source: int | list[int]  # an earlier layer's index (-1: the image), or several (Concat)
    channels: int
    stride: int


def _int(v: Any, what: str, low: int = 1, high: int = 1 << 16) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise UserError(
            f"the YOLO architecture has {what} {v!r} (expected a whole number from {low} to {high})"
        )
    return v


def _arg(args: list[Any], i: int, default: Any) -> Any:
    return args[i] if len(args) > i and args[i] is not None else default


def _conv(c_in: int, args: list[Any], n: int, s: Scaling) -> tuple[nn.Module, int, int]:
    c_out = s.channels(args[0])
    k = _int(_arg(args, 1, 1), "a kernel size", high=MAX_KERNEL)
    stride = _int(_arg(args, 2, 1), "a stride", high=8)
    if len(args) > 3 and any(a not in (None, 1) for a in args[3:]):
        raise UserError(
            f"the YOLO architecture has a Conv with padding/groups {args[3:]} "
            "that posekit does not build"
        )
    return _repeat(lambda: ConvBNAct(c_in, c_out, k, stride), n), c_out, stride


def _c2f(c_in: int, args: list[Any], n: int, s: Scaling) -> tuple[nn.Module, int, int]:
    c_out = s.channels(args[0])
    return C2f(c_in, c_out, n, shortcut=bool(_arg(args, 1, False))), c_out, 1


def _c3k2(c_in: int, args: list[Any], n: int, s: Scaling) -> tuple[nn.Module, int, int]:
    c_out = s.channels(args[0])
    c3k = s.scale in {"m", "l", "x"} or bool(_arg(args, 1, False))
    e = float(_arg(args, 2, 0.5))
    if not 0.05 <= e <= 1:
        raise UserError(f"the YOLO architecture has a C3k2 expansion of {e} (0.05 to 1)")
    return C3k2(c_in, c_out, n, c3k=c3k, e=e, attn=bool(_arg(args, 3, False))), c_out, 1


def _sppf(c_in: int, args: list[Any], n: int, s: Scaling) -> tuple[nn.Module, int, int]:
    c_out = s.channels(args[0])
    k = _int(_arg(args, 1, 5), "an SPPF kernel", high=MAX_KERNEL)
    pools = _int(_arg(args, 2, 3), "an SPPF pool count", high=8)
    legacy = len(args) <= 2
    return SPPF(c_in, c_out, k, pools, shortcut=bool(_arg(args, 3, False)), act=legacy), c_out, 1


def _c2psa(c_in: int, args: list[Any], n: int, s: Scaling) -> tuple[nn.Module, int, int]:
    c_out = s.channels(args[0])
    if c_out != c_in:
        raise UserError(
            f"the YOLO architecture has a C2PSA from {c_in} to {c_out} channels "
            "(it keeps its width)"
        )
    return C2PSA(c_in, c_out, n), c_out, 1


def _upsample(c_in: int, args: list[Any], n: int, s: Scaling) -> tuple[nn.Module, int, int]:
    factor = _int(_arg(args, 1, 2), "an upsampling factor", high=8)
    mode = _arg(args, 2, "nearest")
    if mode != "nearest" or (len(args) and args[0] is not None):
        raise UserError(
            f"the YOLO architecture has an upsampling {args} that posekit does not "
            "build (nearest, by a factor)"
        )
    return nn.Upsample(scale_factor=factor, mode="nearest"), c_in, -factor


#: module name -> builder(input channels, args, repeats, scaling) -> (module, channels, stride)
#: (a negative stride divides: upsampling); repeat-count blocks take the count as an argument.
BUILDERS: dict[str, Callable[[int, list[Any], int, Scaling], tuple[nn.Module, int, int]]] = {
    "Conv": _conv,
    "C2f": _c2f,
    "C3k2": _c3k2,
    "SPPF": _sppf,
    "C2PSA": _c2psa,
    "nn.Upsample": _upsample,
}
#: rows whose repeat count may exceed 1: blocks that take it as an argument, and stacked Convs
REPEATABLE = {"C2f", "C3k2", "C2PSA", "Conv"}


def _repeat(make: Callable[[], nn.Module], n: int) -> nn.Module:
    return make() if n == 1 else nn.Sequential(*(make() for _ in range(n)))


def _resolve(args: Any, named: dict[str, Any]) -> list[Any]:
    """A row's arguments with the names `nc` / `kpt_shape` and literal strings resolved."""
    if not isinstance(args, list | tuple):
        raise UserError(f"the YOLO architecture has a row whose arguments are {args!r}")
    out = []
    for a in args:
        if isinstance(a, str) and a in named:
            a = named[a]
        elif isinstance(a, str) and len(a) <= 64:
            # "None", "True": literals only, no code; anything else stays text
            with contextlib.suppress(ValueError, SyntaxError, RecursionError, MemoryError):
                a = ast.literal_eval(a)
        out.append(a)
    return out


def build_layers(
    rows: list[Any], s: Scaling, *, in_channels: int = 3
) -> tuple[list[Layer], YOLOHead, list[int], list[int]]:
    """The body's layers, the head, the head's input layer indices and their strides."""
    if not isinstance(rows, list) or not 2 <= len(rows) <= MAX_ROWS:
        raise UserError(f"the YOLO architecture must have 2 to {MAX_ROWS} layer rows")
    named = {"nc": s.nc, "kpt_shape": [s.num_keypoints, s.kpt_dims]}
    legacy = not any(isinstance(r, list | tuple) and len(r) == 4 and r[2] == "C3k2" for r in rows)
    layers: list[Layer] = []
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple) or len(row) != 4:
            raise UserError(f"the YOLO architecture's row {i} is not [from, repeats, module, args]")
        source, n, name, args = row[0], _int(row[1], "a repeat count", high=MAX_REPEATS), *row[2:]
        sources = _sources(source, i)
        args = _resolve(args, named)
        ins = [in_channels if j < 0 else layers[j].channels for j in sources]
        prev_stride = [1 if j < 0 else layers[j].stride for j in sources]
        if name in HEADS:
            if i != len(rows) - 1:
                raise UserError(f"the YOLO architecture has its {name} head before the last row")
            head = YOLOHead(
                ins,
                s.nc,
                s.num_keypoints if name != "Detect" else 0,
                s.kpt_dims,
                reg_max=s.reg_max,
                legacy=legacy,
                pose26=HEADS[name],
                end2end=s.end2end,
            )
            return layers, head, sources, prev_stride
        if name == "Concat":
            if len(set(prev_stride)) != 1:
                raise UserError(
                    f"the YOLO architecture concatenates layers of strides {prev_stride} at row {i}"
                )
            layers.append(Layer(Concat(), sources, sum(ins), prev_stride[0]))
            continue
        if name not in BUILDERS or len(ins) != 1:
            known = ", ".join([*BUILDERS, "Concat", *HEADS])
            raise UserError(
                f"the YOLO architecture's row {i} is a {name!r}, which posekit does "
                f"not build (it builds {known})"
            )
        if not args:
            raise UserError(f"the YOLO architecture's row {i} ({name}) has no arguments")
        n = s.repeats(n)
        if n > 1 and name not in REPEATABLE:
            raise UserError(f"the YOLO architecture repeats {name} at row {i}")
        module, c_out, stride = BUILDERS[name](ins[0], args, n, s)
        out_stride = prev_stride[0] // -stride if stride < 0 else prev_stride[0] * stride**n
        layers.append(Layer(module, sources[0], c_out, max(out_stride, 1)))
    raise UserError("the YOLO architecture has no Detect, Pose or Pose26 head as its last row")


def _sources(source: Any, i: int) -> list[int]:
    """Row `i`'s input layers as indices (-1 at row 0: the image)."""
    items = source if isinstance(source, list | tuple) else [source]
    out = []
    for j in items:
        k = _int(j, "a layer source", low=-MAX_ROWS, high=MAX_ROWS)
        k = i + k if k < 0 else k
        if (i == 0 and j != -1) or (i > 0 and not 0 <= k < i):
            raise UserError(
                f"the YOLO architecture's row {i} reads layer {j}, which does not come before it"
            )
        out.append(k if i else -1)
    return out
