"""Export for deployment: ONNX files that carry posekit's metadata and are checked against
the PyTorch model they come from (`Model.export`, `posekit export`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posekit.export.onnx import (
    ExportConfig,
    ExportResult,
    commit_export,
    export_onnx,
    external_data,
)
from posekit.utils.commit import staging_folder
from posekit.utils.errors import UserError

if TYPE_CHECKING:
    from posekit.models.base import KeypointModel

FORMATS = ("onnx",)


class ExportCheckError(UserError):
    """The exported file disagrees with the model beyond tolerance (nothing is written)."""


def default_output(source: str | Path, format: str) -> Path:
    """Beside the model file `source` with the format's suffix (`model.<format>` in a
    folder); `<name>.<format>` for a registered (untrained) model's name."""
    path = Path(source)
    if path.exists():
        return (path / f"model.{format}") if path.is_dir() else path.with_suffix(f".{format}")
    return Path(f"{source}.{format}")


def refuse_foreign(out: Path, force: bool) -> None:
    """An existing file at `out` is replaced only when it is a posekit export (or `force`)."""
    if out.is_dir():
        raise UserError(f"{out} is a folder; give a file name to export to")
    data = external_data(out)
    if data.exists() and not out.exists() and not force:
        raise UserError(f"{data} exists beside no posekit export: choose another --out, or "
                         "--force to replace it")  # fmt: skip
    if not out.exists() or force:
        return
    from posekit.export.metadata import read_metadata

    try:
        ours = "family" in read_metadata(out)
    except Exception:
        ours = False
    if not ours:
        raise UserError(f"{out} exists and is not a posekit export: choose another --out, or "
                         "--force to replace it")  # fmt: skip


def export_model(
    net: KeypointModel,
    config: ExportConfig | None = None,
    *,
    source: str | Path,
    category_ids: list[int] | None = None,
    format: str = "onnx",
    out: str | Path | None = None,
    check_source: Any = None,
    force: bool = False,
) -> ExportResult:
    """`Model.export` (see there): write, then check, the exported file of `net` (from the
    model file or name `source`, beside which it goes without `out`; `category_ids`: the
    dataset ids of its classes, kept in the metadata)."""
    from posekit.utils.device import select_device

    c = config or ExportConfig()

    if format not in FORMATS:
        raise UserError(f"unknown export format {format!r}; supported: {', '.join(FORMATS)}")
    path = Path(out) if out is not None else default_output(source, format)
    refuse_foreign(path, force)
    dev = select_device(c.device)
    lifting = net.input_kind == "keypoints"
    if lifting and (c.half or c.static):
        raise UserError(
            "lifting networks export in float32 with dynamic batch and frames "
            "(no --half, no --static)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    # written and checked in a staging folder, put in place only when it passed: a failed
    # export or check leaves an earlier file at `path` as it was
    stage = staging_folder(path.parent, "export")
    try:
        staged = stage / path.name
        if lifting:
            result = _lifting_export(net, staged, c, dev)
        else:
            result = _image_export(net, staged, c, dev, category_ids, check_source)
        if result.check is not None and not result.check.ok:
            raise ExportCheckError(f"the export disagrees with the model, so nothing was "
                                   f"written at {path}: {result.check.describe()}")  # fmt: skip
        commit_export(stage, path)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    result.path = path
    return result


def _image_export(
    net: KeypointModel,
    staged: Path,
    c: ExportConfig,
    dev: Any,
    category_ids: list[int] | None,
    check_source: Any,
) -> ExportResult:
    """The ONNX file of a detector at `staged`, checked on images when `c.check`."""
    size = c.imgsz or int(getattr(net.config, "imgsz", 640))
    result = export_onnx(net, staged, imgsz=size, static=c.static, batch=c.batch,
                         half=c.half, opset=c.opset, device=dev,
                         category_ids=category_ids)  # fmt: skip
    if c.check:
        from posekit.export.check import check_export, check_images

        images = check_images(check_source)
        result.check = check_export(net, staged, images, imgsz=size, device=dev, half=c.half)
    return result


def _lifting_export(net: KeypointModel, staged: Path, c: ExportConfig, dev: Any) -> ExportResult:
    """The ONNX file of a lifting network at `staged` (`posekit.export.lifting`), checked on
    random windows when `c.check`."""
    from posekit.export.lifting import check_lifting_export, export_lifting

    result = export_lifting(net, staged, opset=c.opset, device=dev)
    if c.check:
        result.check = check_lifting_export(net, staged)  # type: ignore[assignment]
    return result


__all__ = ["FORMATS", "ExportCheckError", "ExportConfig", "ExportResult", "export_model",
           "export_onnx"]  # fmt: skip
