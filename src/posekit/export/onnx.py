"""ONNX export of any registered family, with posekit's metadata and a self-check.

The graph is the network with BatchNorm folded into the convolutions and the input
normalisation inside: it takes `images`, (B, 3, H, W) float32 RGB in 0..1 (letterboxed whole
images for one-stage families, crops for top-down ones) and returns the family's raw outputs
(`export_output_names()`): rtpose the class logits, boxes and keypoints (input pixels) of every
location plus the keypoint heatmaps; ViTPose the heatmaps. Decoding (NMS, keypoint snapping,
heatmap maxima with DARK, the flip test) stays in posekit's post-processing, which runs after
either backend.

By default the batch is dynamic, and so are height and width for whole-image families (any
multiple of the stride, so rectangular letterboxing works as in PyTorch); `static` fixes them.
The exporter is torch's dynamo-based one (`torch.export`, ONNX opset 18 by default), which
needs `onnxscript` (in the `posekit[onnx]` extra).
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from posekit.export.metadata import metadata_for, require_onnx
from posekit.models.base import KeypointModel
from posekit.models.fuse import fused_for_inference
from posekit.utils.bounds import Limit, check_ranges, ranged
from posekit.utils.commit import commit_staged, staging_folder
from posekit.utils.errors import UserError
from posekit.utils.extras import require

if TYPE_CHECKING:
    from posekit.export.check import ExportCheck

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18
#: Largest dynamic batch and feature-map side (in strides) the graph declares.
MAX_BATCH, MAX_CELLS = 4096, 512


@dataclass(frozen=True)
class ExportConfig:
    """The settings of an export, defined once: `Model.export(**settings)` takes these names
    and `posekit export` derives its options from them."""

    # whole-image models: the example input size, the only one with `static` (None: the
    # model's own)
    imgsz: int | None = ranged(None, 32, 8192)
    static: bool = False  # fix batch and size instead of dynamic dimensions
    batch: int = ranged(1, 1, MAX_BATCH)  # the batch of a static graph
    half: bool = False  # half precision (fp16) inside the graph (needs device cuda)
    opset: int = ranged(DEFAULT_OPSET, 17, 30)  # the ONNX opset of the graph
    device: str = "cpu"  # where the model is traced and checked
    # run the file with ONNX Runtime and the model on the same images; fail beyond tolerance
    check: bool = True

    def __post_init__(self) -> None:
        check_ranges(self, "export")


#: The example input is made in memory before the export: at most this many values (1 GiB).
MAX_EXAMPLE_VALUES = Limit("POSEKIT_MAX_EXAMPLE_VALUES", 2**28, "values")


class ExportGraph(nn.Module):
    """What is exported: `net`'s forward as a flat tuple of float32 tensors (fp16 inside with
    `half`: the input is cast in the graph, the outputs back)."""

    def __init__(self, net: KeypointModel, half: bool) -> None:
        super().__init__()
        self.net = net.half() if half else net
        self.half = half

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = images.half() if self.half else images
        return tuple(t.float() for t in self.net.export_outputs(self.net(x)))


@dataclass
class ExportResult:
    """The exported file and what it holds."""

    path: Path
    input_shape: tuple[int | str, ...]
    opset: int
    half: bool
    seconds: float
    check: ExportCheck | None = None  # the self-check's figures (`posekit.export.check`)

    stride: int = 32
    input_name: str = "images"

    def describe(self) -> str:
        dims = "x".join(str(d) for d in self.input_shape)
        if "height" in self.input_shape:
            dims += f" (height and width: multiples of {self.stride})"
        mb = self.path.stat().st_size / 1e6
        return (f"{self.path} ({mb:.1f} MB, input {self.input_name} {dims}, opset {self.opset}"
                f"{', fp16' if self.half else ''}) in {self.seconds:.1f} s")  # fmt: skip


def export_shape(
    net: KeypointModel, imgsz: int, static: bool, batch: int
) -> tuple[torch.Tensor, tuple[int | str, ...], dict[str, Any] | None]:
    """Example input, the graph's declared input shape and torch.export's dynamic shapes."""
    if net.input_mode.dynamic_size:
        if imgsz % net.input_stride:
            raise UserError(f"imgsz must be a multiple of {net.input_stride}, got {imgsz}")
        h = w = imgsz
    else:
        h, w = net.example_input(1).shape[-2:]
    limit = MAX_EXAMPLE_VALUES.value()
    if (batch if static else 2) * 3 * h * w > limit:
        raise UserError(f"export: an example input of {batch if static else 2}x3x{h}x{w} is "
                         f"larger than {limit:,} values; lower --imgsz or --batch (or set "
                         f"{MAX_EXAMPLE_VALUES.env})")  # fmt: skip
    if static:
        return torch.rand(batch, 3, h, w), (batch, 3, h, w), None
    # an example batch of 2: torch.export specialises dimensions whose example size is 1
    dims: dict[int, Any] = {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}
    shape: tuple[int | str, ...] = ("batch", 3, h, w)
    if net.input_mode.dynamic_size:
        s = net.input_stride
        dims[2] = s * torch.export.Dim("height_cells", min=1, max=MAX_CELLS)
        dims[3] = s * torch.export.Dim("width_cells", min=1, max=MAX_CELLS)
        shape = ("batch", 3, "height", "width")
    return torch.rand(2, 3, h, w), shape, {"images": dims}


def export_onnx(
    net: KeypointModel,
    out: str | Path,
    *,
    imgsz: int | None = None,
    static: bool = False,
    batch: int = 1,
    half: bool = False,
    opset: int = DEFAULT_OPSET,
    device: torch.device | None = None,
    category_ids: list[int] | None = None,
) -> ExportResult:
    """Write `net` as an ONNX file at `out` (replaced atomically), with posekit's metadata.

    `imgsz`: the example (and with `static` the only) input size of whole-image families
    (default: the model's own); top-down families take their crop size. `half`: fp16 weights
    and arithmetic inside the graph (inputs and outputs stay float32); it needs a CUDA
    `device`, as ONNX Runtime's CPU provider lacks fp16 kernels for most operators.
    """
    from posekit import __version__

    device = device or torch.device("cpu")
    if half and device.type != "cuda":
        raise UserError("--half exports need a CUDA device (--device cuda): ONNX Runtime's CPU "
                         "provider has no fp16 kernels for most operators")  # fmt: skip
    ExportConfig(imgsz=imgsz, static=static, batch=batch, half=half, opset=opset)  # ranges
    imgsz = imgsz or int(getattr(net.config, "imgsz", 640))
    example, shape, dynamic = export_shape(net, imgsz, static, batch)
    meta = metadata_for(net, input_shape=shape, category_ids=category_ids,  # type: ignore[arg-type]
                        version=__version__, imgsz=imgsz)  # fmt: skip
    seconds = write_graph(
        net, out, example, "images", dynamic, meta, half=half, opset=opset, device=device
    )
    return ExportResult(Path(out), shape, opset, half, seconds, stride=net.input_stride)


def write_graph(
    net: KeypointModel,
    out: str | Path,
    example: torch.Tensor,
    input_name: str,
    dynamic: dict[str, Any] | None,
    metadata: dict[str, str],
    *,
    half: bool = False,
    opset: int = DEFAULT_OPSET,
    device: torch.device,
) -> float:
    """Trace `net` (BatchNorm folded, eval mode) on `example` into an ONNX graph with one
    input, `input_name` (`dynamic`: torch.export's dynamic shapes, keyed "images" as the
    wrapper's argument), and `net`'s named outputs; write it with `metadata` (and posekit
    as its producer) at `out`, checked by ONNX's checker and replaced atomically. Returns the
    seconds it took."""
    onnx = require_onnx()
    # torch's dynamo exporter writes ONNX through onnxscript
    require("onnxscript", "onnx", "ONNX export")
    from posekit import __version__

    t0 = time.perf_counter()
    graph = ExportGraph(fused_for_inference(net).to(device), half).eval()
    with (
        torch.no_grad(),
        contextlib.redirect_stdout(io.StringIO()),  # the exporter's progress lines
        quiet(QUIET_LOGGERS),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", FutureWarning)  # torch.export's own deprecations
        program = torch.onnx.export(
            graph,
            (example.to(device),),
            dynamo=True,
            input_names=[input_name],
            output_names=net.export_output_names(),
            dynamic_shapes=dynamic,
            opset_version=opset,
            optimize=True,
            verbose=False,
        )
    proto = program.model_proto
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.producer_version = "posekit", __version__
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = staging_folder(out.parent, "export")  # new: never a planted name or link
    try:
        staged = stage / out.name
        large = proto.ByteSize() > 2**31 - 1024  # protobuf's 2 GB limit: weights beside it
        onnx.save_model(proto, str(staged), save_as_external_data=large,
                        location=external_data(out).name if large else None)  # fmt: skip
        onnx.checker.check_model(str(staged))
        commit_export(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return time.perf_counter() - t0


def external_data(path: Path) -> Path:
    """Where the weights of an export too large for one protobuf lie (beside the file)."""
    return path.with_name(f"{path.name}.data")


def commit_export(stage: Path, out: Path) -> None:
    """Put the export staged in `stage` (its file, and its external data if any) at `out`
    as one unit (`posekit.utils.commit`): a failure leaves an earlier export whole. The
    external data of an earlier export that the new one does not have goes with it."""
    staged, data = stage / out.name, external_data(stage / out.name)
    moves = [(staged, out)] + ([(data, external_data(out))] if data.exists() else [])
    stale = [external_data(out)] if not data.exists() and external_data(out).exists() \
        and out.exists() else []  # fmt: skip
    commit_staged(moves, stage, remove=stale)


#: The exporter's own loggers, which report every graph rewrite at INFO.
QUIET_LOGGERS = ("onnxscript", "onnx_ir", "torch.onnx", "torch.export")


@contextlib.contextmanager
def quiet(names: tuple[str, ...]) -> Iterator[None]:
    """Raise these loggers to WARNING for the duration (restored afterwards)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
