"""`posekit data convert`: any supported format to the posekit (COCO) layout or to YOLO-pose."""

from __future__ import annotations

from pathlib import Path

from posekit.data.layout import detect_format, load_splits, write_posekit
from posekit.data.problems import LoadReport
from posekit.data.yolo import write_yolo
from posekit.utils.outputs import claim_output

TARGETS = ("coco", "yolo")


def convert(
    src: str | Path,
    dst: str | Path,
    *,
    to: str = "coco",
    link_images: bool = True,
    force: bool = False,
) -> tuple[Path, LoadReport]:
    """Convert a dataset; returns what was written (folder or data YAML) and the load report.

    Every problem the reader found is in the report, and every entry it skipped is counted
    there, so a caller can tell the user exactly what did not make it across. `dst` must be
    empty or an earlier output of `convert` (which is replaced); `force=True` writes into
    another folder (see `posekit.utils.outputs.claim_output`).
    """
    if to not in TARGETS:
        raise ValueError(f"unknown target format {to!r}: use one of {TARGETS}")
    src = Path(src)
    splits = load_splits(src)  # an unusable source fails before the destination is touched
    target = Path(dst).resolve()
    if target == src.resolve() or target in src.resolve().parents:
        raise ValueError(f"{dst}: cannot convert {src} into a folder that holds it")
    claim_output(dst, "data convert", source=str(src), force=force)
    report = LoadReport()
    for ds in splits.values():
        report.extend(ds.report)
    if to == "yolo":
        return write_yolo(splits, dst, link_images=link_images), report
    prefix = "labeled-data/" if detect_format(src) == "dlc" else None
    return write_posekit(splits, dst, link_images=link_images, strip_prefix=prefix), report
