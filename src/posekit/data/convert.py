"""`posekit data convert`: any supported format to the posekit (COCO) layout or to YOLO-pose."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from posekit.data.dataset import KeypointDataset
from posekit.data.formats import TARGETS, format_of, load_splits
from posekit.data.problems import DatasetError, LoadReport, Problem
from posekit.utils.commit import rebase, staging_folder, write_staged
from posekit.utils.errors import UserError
from posekit.utils.outputs import claim_output, kept_entries, remove_earlier


def convert(
    src: str | Path,
    dst: str | Path,
    *,
    to: str = "coco",
    link_images: bool = True,
    force: bool = False,
    skip_missing_images: bool = False,
    image_root: str | Path | None = None,
    video_dir: str | Path | None = None,
    include_predicted: bool = False,
    frame_format: str = "jpg",
) -> tuple[Path, LoadReport]:
    """Convert a dataset; returns what was written (folder or data YAML) and the load report.

    Every problem the reader found is in the report, and every entry it skipped is counted
    there, so a caller can tell the user exactly what did not make it across. `dst` must be
    empty or an earlier output of `convert` (which is replaced); `force=True` writes into
    another folder (see `posekit.utils.outputs.claim_output`).

    The output is written into a staging folder inside `dst`, read back and compared with the
    input's counts, and only then renamed into place (`posekit.utils.commit`): a conversion
    that fails half-way leaves `dst` as it was (an earlier output of `convert` there stays
    whole until the new one replaces it). Nothing is written when the reader dropped
    every annotation, or when image files are missing (listed in the error) unless
    `skip_missing_images`, which leaves those images and their annotations out with a count
    in the report. `image_root`: where a COCO file's
    images are (default: guessed from the layout). SLEAP projects' labelled frames are
    extracted from their videos (`video_dir`, `include_predicted`, `frame_format`: see
    `load_splits`).
    """
    if to not in TARGETS:
        raise UserError(f"unknown target format {to!r}: use one of {', '.join(TARGETS)}")
    target_format = TARGETS[to]
    src = Path(src)
    # an unusable source fails before the destination is touched
    splits = load_splits(
        src,
        image_root=image_root,
        video_dir=video_dir,
        include_predicted=include_predicted,
        frame_format=frame_format,
    )
    target = Path(dst).resolve()
    if target == src.resolve() or target in src.resolve().parents:
        raise UserError(f"{dst}: cannot convert {src} into a folder that holds it")
    report = LoadReport()
    for ds in splits.values():
        report.extend(ds.report)
    if not any(ds.annotations for ds in splits.values()) and report.skipped:
        raise DatasetError(f"{src}: every annotation was dropped ({report.summary()}); "
                           "nothing was written (posekit data check lists the problems)",
                           report.problems)  # fmt: skip
    splits = {name: without_missing_images(ds, report, skip_missing_images)
              for name, ds in splits.items()}  # fmt: skip
    writes = target_format.writes
    claim_output(dst, "data convert", source=str(src), force=force, writes=writes,
                 keep_earlier=True)  # fmt: skip
    prefix = format_of(src).strip_prefix
    folder = Path(dst)

    def write_to(stage: Path, prefix: str | None) -> Path:
        assert target_format.write is not None
        return target_format.write(splits, stage, link_images=link_images, strip_prefix=prefix,
                                   report=report)  # fmt: skip

    def write(stage: Path) -> Path:
        if any(im.frame is not None for ds in splits.values() for im in ds.images):
            # frames of videos (SLEAP): extracted beside the stage, placed as images
            from posekit.data.sleap import extract_frames

            frames = staging_folder(folder, "frames")
            try:
                for ds in splits.values():
                    extract_frames(ds, frames)
                written = write_to(stage, None)
            finally:
                shutil.rmtree(frames, ignore_errors=True)
        else:
            written = write_to(stage, prefix)
        verify_written(splits, written, to)
        return rebase(written, stage, folder)

    written = write_staged(folder, "convert", write)
    remove_earlier(folder, [*kept_entries(folder), *writes])  # an earlier run's rest
    return written, report


def written_counts(splits: dict[str, KeypointDataset], to: str) -> dict[str, tuple[int, int]]:
    """(images, instances) per split that a conversion to `to` must leave on disk (YOLO-pose
    holds no crowd annotations)."""
    return {name: (len(ds.images),
                   sum(1 for a in ds.annotations if not (to == "yolo" and a.iscrowd)))
            for name, ds in splits.items()}  # fmt: skip


def verify_written(splits: dict[str, KeypointDataset], written: Path, to: str) -> None:
    """Read the output back as any user would and compare its counts with the input's: a
    writer that put files where no reader looks fails here, not in a later training run."""
    expected = written_counts(splits, to)
    back = load_splits(written)
    found = {name: (len(ds.images), len(ds.annotations)) for name, ds in back.items()}
    if found != expected:

        def say(c: dict[str, tuple[int, int]]) -> str:
            return ", ".join(f"{s}: {n} images / {m} instances" for s, (n, m) in c.items())

        raise DatasetError(f"{written}: read back, the output has {say(found)}, but "
                           f"{say(expected)} were written; please report this")  # fmt: skip


def without_missing_images(ds: KeypointDataset, report: LoadReport, skip: bool) -> KeypointDataset:
    """`ds` when every image file exists; else a `DatasetError` listing the missing ones (the
    conversion would stop half-way), or with `skip` the dataset without them and their
    annotations, each counted in `report`."""
    # frames of videos (SLEAP) are extracted later; their videos were checked when read
    missing = [im for im in ds.images
               if im.frame is None and not ds.image_path(im).is_file()]  # fmt: skip
    if not missing:
        return ds
    if not skip:
        first = ", ".join(im.file_name for im in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DatasetError(
            f"{ds.source}: {len(missing)} of {len(ds.images)} image files are missing under "
            f"{ds.image_root} ({first}{more}); nothing was written: give the right folder with "
            "--image-root, or convert the rest with --skip-missing-images"
        )
    gone = {im.id for im in missing}
    for im in missing:
        report.add(Problem("image-missing", f"image file not found: {im.file_name}", ds.source,
                           image_id=im.id, field="file_name"), skipped="image")  # fmt: skip
    lost = [a for a in ds.annotations if a.image_id in gone]
    if lost:
        report.skipped["annotation (image-missing)"] += len(lost)
    return replace(ds, images=[im for im in ds.images if im.id not in gone],
                   annotations=[a for a in ds.annotations if a.image_id not in gone])  # fmt: skip
