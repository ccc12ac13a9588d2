"""`posekit export`: a model file for deployment (ONNX), checked against the model."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from posekit.cli.logs import setup_logging
from posekit.cli.options import force_option, setting_option
from posekit.export import FORMATS
from posekit.export.onnx import ExportConfig

log = logging.getLogger("posekit.export")


@click.command()
@click.option(
    "--model",
    required=True,
    help="A checkpoint (.pt), a transformers folder or .safetensors, a published .pth, or a "
    "registered name (untrained weights).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="onnx", show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="The file to write (default: beside the checkpoint, with the format's suffix).",
)
@setting_option(
    ExportConfig,
    "imgsz",
    help="Whole-image models: the example input size, the only one with --static "
    "(default: the model's).",
)
@click.option(
    "--static",
    is_flag=True,
    help="Fix the input size (and the batch, to --batch) instead of dynamic batch and size.",
)
@setting_option(ExportConfig, "batch", help="The batch size of a --static graph.")
@click.option("--half", is_flag=True, help="fp16 inside the graph (needs --device cuda).")
@setting_option(ExportConfig, "opset", help="The ONNX opset of the graph.")
@click.option("--device", default="cpu", show_default=True)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Run the file with ONNX Runtime and the model on the same images; fail beyond tolerance.",
)
@click.option(
    "--check-source",
    default=None,
    help="Images to check on (anything predict reads; default: rendered scenes).",
)
@force_option
def export(
    model: str,
    fmt: str,
    out: Path | None,
    imgsz: int | None,
    static: bool,
    batch: int,
    half: bool,
    opset: int,
    device: str,
    check: bool,
    check_source: str | None,
    force: bool,
) -> None:
    """Export a model for deployment: an ONNX file that carries the model's keypoint schema,
    classes and input settings, runs with `posekit predict --model file.onnx` (ONNX Runtime)
    or any ONNX runtime, and is checked against the PyTorch model before it is kept."""
    from posekit import Model

    setup_logging()
    m = Model(model)
    result = m.export(fmt, out=out, imgsz=imgsz, static=static, batch=batch, half=half,
                      opset=opset, device=device, check=check, check_source=check_source,
                      force=force)  # fmt: skip
    log.info("exported %s", result.describe())
    if result.check is not None:
        log.info("check: %s", result.check.describe())
