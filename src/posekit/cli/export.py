"""`posekit export`: a model file for deployment (ONNX), checked against the model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from posekit.cli.logs import setup_logging
from posekit.cli.options import force_option, remaining_settings
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
@remaining_settings(ExportConfig)
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
    check_source: str | None,
    force: bool,
    **settings: Any,
) -> None:
    """Export a model for deployment: an ONNX file that carries the model's keypoint schema,
    classes and input settings, runs with `posekit predict --model file.onnx` (ONNX Runtime)
    or any ONNX runtime, and is checked against the PyTorch model before it is kept."""
    from posekit import Model

    setup_logging()
    m = Model(model)
    result = m.export(fmt, out=out, check_source=check_source, force=force, **settings)
    log.info("exported %s", result.describe())
    if result.check is not None:
        log.info("check: %s", result.check.describe())
