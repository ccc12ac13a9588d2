"""`posekit data check`: validate a dataset in any format, including its image files."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from posekit.data.dataset import DatasetStats, ImageInfo, KeypointDataset
from posekit.data.formats import load_splits
from posekit.data.images import (
    ImageReadError,
    apply_exif,
    decode_image,
    file_header,
    read_bytes,
)
from posekit.data.problems import LoadReport, Problem

_ORIENTATION_NAMES = {
    2: "mirrored",
    3: "rotated 180 degrees",
    4: "flipped vertically",
    5: "transposed",
    6: "rotated 90 degrees clockwise",
    7: "transversed",
    8: "rotated 90 degrees counter-clockwise",
}


@dataclass(frozen=True)
class ImageCheck:
    """The outcome of checking one image file: a problem, and a note on its EXIF orientation
    (which way it was read) when the file carries one."""

    problem: Problem | None = None
    note: str | None = None


def check_image(path: Path, image: ImageInfo, *, decode: bool = True) -> ImageCheck:
    """Check one image file: missing, unreadable, over the pixel cap, not decodable, or of a
    size that differs from the annotation file's width and height. It is read as training and
    prediction read it (`posekit.data.read_image`), so an EXIF orientation is resolved the same
    way, and said in the note."""
    where = {"file": str(path), "image_id": image.id, "field": "file_name"}
    if not path.exists():
        return ImageCheck(Problem("image-missing", f"image file not found: {image.file_name}",
                                  **where))  # fmt: skip
    size = (image.width, image.height)
    try:
        if decode:
            decoded = decode_image(read_bytes(path), str(path), size=size)
            header, exif = decoded.header, decoded.exif_applied
            h, w = decoded.image.shape[:2]
        else:  # the header alone: quick, and enough for the size
            header = file_header(path)
            exif = header.orientation != 1 and apply_exif(header, size)
            w, h = header.oriented_size if exif else (header.width, header.height)
    except ImageReadError as e:
        return ImageCheck(Problem(e.code, str(e).removeprefix(f"{path}: "), **where))
    note = None
    if header.orientation != 1:
        how = _ORIENTATION_NAMES.get(header.orientation, f"orientation {header.orientation}")
        if exif:
            read = f"read {how}, as EXIF asks"
        else:
            read = "read as stored, ignoring EXIF (that size matches the annotations)"
        note = (f"{path} (image {image.id}): EXIF orientation {header.orientation} "
                f"({header.width}x{header.height} stored): {read}")  # fmt: skip
    if (w, h) != size:
        problem = Problem(
            "image-size",
            f"annotation says {image.width}x{image.height} but the file is {w}x{h}",
            str(path),
            image_id=image.id,
            field="width/height",
        )
        return ImageCheck(problem, note)
    return ImageCheck(None, note)


def check_images(
    ds: KeypointDataset,
    *,
    decode: bool = True,
    workers: int = 4,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Problem], list[str]]:
    """Check every image file of `ds` (threads: OpenCV decodes without holding the GIL);
    returns the problems and the orientation notes."""

    def one(im: ImageInfo) -> ImageCheck:
        if im.frame is not None:  # a video frame to extract (SLEAP), checked when it was read
            return ImageCheck()
        return check_image(ds.image_path(im), im, decode=decode)

    problems, notes = [], []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for c in pool.map(one, ds.images):
            if c.problem is not None:
                problems.append(c.problem)
            if c.note is not None:
                notes.append(c.note)
            if progress is not None:
                progress(1)
    return problems, notes


def check_to_dict(r: SplitCheck) -> dict[str, Any]:
    """One split's summary and every problem as plain data (`posekit data check --json`)."""
    st = r.stats
    return {
        "split": r.name,
        "source": r.dataset.source,
        "images": st.images,
        "images_without_instances": st.images_without_instances,
        "instances": st.total_instances,
        "crowd": st.crowd,
        "labelled_keypoints": st.labelled_keypoints(),
        "categories": [
            {
                "id": c.id,
                "name": c.name,
                "keypoints": list(c.schema.keypoints),
                "instances": st.instances.get(c.id, 0),
                "labelled_keypoints": int(st.visibility[c.id][:, 1:].sum()),
            }
            for c in r.dataset.categories
        ],
        "skipped": dict(r.skipped),
        "notes": list(r.notes),
        "problems": [
            {k: v for k, v in asdict(p).items() if v is not None} | {"text": str(p)}
            for p in r.problems
        ],
    }


@dataclass
class SplitCheck:
    """The outcome of checking one split; `notes` are facts worth knowing that are not
    problems (images read with an EXIF orientation)."""

    name: str
    dataset: KeypointDataset
    stats: DatasetStats
    problems: list[Problem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def check_dataset(
    path: str | Path,
    *,
    images: bool = True,
    decode: bool = True,
    progress_factory: Callable[[str, int], Callable[[int], None]] | None = None,
    image_root: str | Path | None = None,
    video_dir: str | Path | None = None,
) -> list[SplitCheck]:
    """Load every split of `path` (any format), collect all problems and summary counts.

    Raises `DatasetError` when the input cannot be used at all (the CLI's exit code 2).
    """
    out = []
    for name, ds in load_splits(path, image_root=image_root, video_dir=video_dir).items():
        report = LoadReport()
        report.extend(ds.report)
        problems, notes = list(report.problems), [str(n) for n in report.notes]
        if images:
            cb = progress_factory(name, len(ds.images)) if progress_factory else None
            image_problems, image_notes = check_images(ds, decode=decode, progress=cb)
            problems += image_problems
            notes += image_notes
        out.append(SplitCheck(name, ds, ds.stats(), problems, dict(report.skipped), notes))
    return out
