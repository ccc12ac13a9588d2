"""SLEAP projects (`.slp`, read with the well-kept `sleap-io` library: `posekit[sleap]`).

SLEAP labels frames of videos. Each labelled frame becomes an image named
`<video stem>/frame_<index>.<jpg|png>`, extracted from its video when the dataset is converted
(`extract_frames`); the video is looked for at its stored path when that stays inside the
`.slp`'s folder (or `video_dir`), then by file name next to the `.slp` and in `video_dir`: a
stored path that leads elsewhere (absolute, `../..`) is never followed. Frames embedded in the
file (`.pkg.slp`) are read from it.

User-labelled instances are the ground truth; predicted-only instances (no user instance was
made from them) are counted in a note and left out unless `include_predicted`. SLEAP has no
visibility flag: a placed, visible node is v=2, a missing one unlabelled (v=0). Each skeleton
is a category (its nodes and edges); track names are kept on the instances
(`extra["track"]`). Boxes are grown around the labelled keypoints (as for DeepLabCut).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np

from posekit.data.dataset import (
    Annotation,
    Category,
    ImageInfo,
    KeypointDataset,
    VideoFrame,
    far_outside,
    keypoint_instance,
)
from posekit.data.images import (
    ImageReadError,
    check_pixels,
    image_size,
    read_image,
    require_header,
)
from posekit.data.problems import DatasetError, LoadReport, Problem
from posekit.schema import KeypointSchema, SchemaError
from posekit.utils.errors import UserError
from posekit.utils.extras import require
from posekit.utils.paths import escapes, join_inside

FRAME_FORMATS = ("jpg", "png")


def _sio() -> Any:
    return require("sleap_io", "sleap", "reading SLEAP .slp files")


def find_video(stored: str, slp: Path, video_dir: Path | None) -> Path | None:
    """The video file of a SLEAP video entry: its stored path where that stays inside the
    `.slp`'s folder or `video_dir`, else a file of that name in either. A stored path that
    leads elsewhere (an absolute path from the labelling machine, `../..`) is not followed:
    a `.slp` from someone else must not choose which file on this machine is read."""
    posix = stored.replace("\\", "/")
    name = PurePosixPath(posix).name
    candidates: list[Path] = []
    for root in [slp.parent] + ([Path(video_dir)] if video_dir is not None else []):
        if _inside(posix, root):
            candidates.append(Path(os.path.normpath(root / posix)))
        if name:
            candidates.append(root / name)
    return next((c for c in candidates if c.is_file()), None)


def _inside(stored: str, root: Path) -> bool:
    """Whether a stored path (relative to `root`, or absolute) stays inside `root`,
    lexically as `join_inside` judges."""
    if escapes(stored) is None:
        return True
    if not PurePosixPath(stored).is_absolute():
        return False
    base = os.path.normpath(Path(root).absolute())
    return os.path.commonpath([base, os.path.normpath(stored)]) == base


def _not_found(stored: str, slp: Path) -> str:
    """Why a video was not found, with the way out when its stored path leads elsewhere."""
    if _inside(stored.replace("\\", "/"), slp.parent):
        return f"looked at its stored path, next to {slp.name}, and in --video-dir"
    return (
        f"its stored path is outside {slp.parent} and is not followed; looked for "
        f"{PurePosixPath(stored.replace(chr(92), '/')).name} next to {slp.name} and in "
        "--video-dir (pass --video-dir with the videos' folder)"
    )


def read_sleap(
    path: str | Path,
    *,
    video_dir: str | Path | None = None,
    include_predicted: bool = False,
    frame_format: str = "jpg",
) -> KeypointDataset:
    """A SLEAP `.slp` file as a keypoint dataset (see the module docs). Its images are frames
    to extract (`extract_frames`): `ImageInfo.frame` names the video and the frame index."""
    if frame_format not in FRAME_FORMATS:
        raise UserError(f"frame_format must be one of {FRAME_FORMATS}, got {frame_format!r}")
    path = Path(path)
    sio = _sio()
    try:
        labels = sio.load_slp(str(path), open_videos=False)
    except Exception as e:  # h5py's and sleap-io's own errors: one line for the user
        raise DatasetError(f"{path}: not a readable SLEAP file ({e})") from None
    report = LoadReport()
    categories, by_skeleton = _categories(labels, path, report)
    videos = {id(v): _video(v, i, path, video_dir, report) for i, v in enumerate(labels.videos)}
    images: list[ImageInfo] = []
    anns: list[Annotation] = []
    predicted_only = 0
    for lf in labels.labeled_frames:
        video = videos.get(id(lf.video))
        where = {"file": str(path), "field": f"video {_name(lf.video)}, frame {lf.frame_idx}"}
        if video is None:  # its video was reported missing
            report.skipped["frame (video-missing)"] += 1
            continue
        if not lf.user_instances and lf.predicted_instances and not include_predicted:
            # a predictions file: training on the frame would teach its animals as background
            predicted_only += len(lf.predicted_instances)
            report.skipped["frame (sleap-predicted-only)"] += 1
            continue
        if video.n_frames and not 0 <= lf.frame_idx < video.n_frames:
            report.add(Problem("frame-range", f"frame {lf.frame_idx} is not in the video's "
                               f"{video.n_frames} frames", **where), skipped="frame")  # fmt: skip
            continue
        source = video.frame_source(lf.frame_idx)
        if source is None:
            report.add(Problem("image-missing", f"frame {lf.frame_idx}'s image file "
                               f"{video.stored[lf.frame_idx]} not found", **where),
                       skipped="frame")  # fmt: skip
            continue
        try:
            w, h = video.frame_size(lf.frame_idx)
            check_pixels(w, h, str(source))
        except ImageReadError as e:
            report.add(Problem(e.code, str(e), **where), skipped="frame")
            continue
        frame = VideoFrame(str(source), int(lf.frame_idx), video_dataset(lf.video),
                           video.is_sequence)  # fmt: skip
        name = f"{video.stem}/frame_{lf.frame_idx:06d}.{frame_format}"
        provenance = {"sleap_video": _name(lf.video), "sleap_frame": int(lf.frame_idx)}
        image = ImageInfo(len(images) + 1, name, w, h, provenance, frame=frame)
        used = {id(i.from_predicted) for i in lf.user_instances if i.from_predicted is not None}
        predicted = [i for i in lf.predicted_instances if id(i) not in used]
        predicted_only += len(predicted)
        chosen = list(lf.user_instances) + (predicted if include_predicted else [])
        for n, inst in enumerate(chosen):
            cat = by_skeleton.get(id(inst.skeleton))
            if cat is None:
                continue
            xy = np.asarray(inst.numpy(), dtype=np.float64)
            visible = np.asarray(inst.points["visible"], dtype=bool) & np.isfinite(xy).all(1)
            kpts = np.zeros((len(xy), 3))
            kpts[visible] = np.c_[xy[visible], np.full(visible.sum(), 2.0)]
            outside = visible & far_outside(xy, w, h)
            for j in np.flatnonzero(outside):
                report.add(Problem("kpt-outside", f"instance {n}: node "
                                   f"{cat.schema.keypoints[j]!r} at {tuple(xy[j].round(1))} is "
                                   f"far outside the {w}x{h} frame", image_id=image.id, **where),
                           skipped="keypoint")  # fmt: skip
                kpts[j] = 0
            extra: dict[str, Any] = {"track": inst.track.name} if inst.track else {}
            if any(inst is p for p in predicted):
                extra |= {"predicted": True, "score": float(inst.score)}
            ann = keypoint_instance(len(anns) + 1, image, cat.id, kpts, extra=extra)
            if ann is None:  # no node placed inside the frame: not an instance, but said
                msg = f"instance {n} has no node placed in the frame: not an instance"
                report.note(Problem("sleap-empty", msg, image_id=image.id, **where))
                continue
            anns.append(ann)
        images.append(image)
    if predicted_only:
        frames = report.skipped["frame (sleap-predicted-only)"]
        if include_predicted:
            what = "included (include_predicted)"
        else:
            what = (f"left out, and with them {frames} frames that have no user instance "
                    "(include_predicted / --include-predicted keeps them)")  # fmt: skip
        msg = (f"{predicted_only} predicted-only instances (no user instance was made from "
               f"them): {what}")  # fmt: skip
        report.note(Problem("sleap-predicted", msg, str(path)))
    return KeypointDataset(images, anns, categories, None, str(path), report)


def video_dataset(video: Any) -> str | None:
    """The HDF5 dataset of frames embedded in a `.pkg.slp` (None for a media file)."""
    meta = getattr(video, "backend_metadata", None) or {}
    return meta.get("dataset") or None


def _categories(
    labels: Any, path: Path, report: LoadReport
) -> tuple[list[Category], dict[int, Category]]:
    out, by_skeleton = [], {}
    for sk in labels.skeletons:
        name = sk.name or "animal"
        try:
            schema = KeypointSchema.create(name, list(sk.node_names), list(sk.edge_inds))
        except SchemaError as e:
            report.add(Problem("schema", str(e), str(path), field=f"skeleton {name}"),
                       skipped="category")  # fmt: skip
            continue
        cat = Category(len(out) + 1, name, schema)
        out.append(cat)
        by_skeleton[id(sk)] = cat
    if not out:
        raise DatasetError(f"{path}: no usable skeleton")
    return out, by_skeleton


def _name(video: Any) -> str:
    """A video's file name as a user knows it (the first frame's for an image sequence)."""
    f = video.filename
    return f"{f[0]} (+{len(f) - 1} images)" if isinstance(f, list) and f else str(f)


@dataclass(frozen=True)
class VideoFrames:
    """Where a SLEAP video's frames come from: a media file or a `.pkg.slp` (`path`), or an
    image sequence (`ImageVideo`: one file per frame, `files[i]`, None where not found)."""

    stem: str
    n_frames: int  # 0: not range-checked (embedded frames keep their source numbers)
    height: int
    width: int
    path: Path | None = None
    files: tuple[Path | None, ...] = ()
    stored: tuple[str, ...] = ()

    @property
    def is_sequence(self) -> bool:
        return self.path is None

    def frame_source(self, frame: int) -> Path | None:
        return self.path if self.path is not None else self.files[frame]

    def frame_size(self, frame: int) -> tuple[int, int]:
        """(width, height) of a frame: each image of a sequence from its own header."""
        if self.path is None and self.files[frame] is not None:
            return image_size(self.files[frame])
        return self.width, self.height


def _video(
    video: Any, index: int, slp: Path, video_dir: str | Path | None, report: LoadReport
) -> VideoFrames | None:
    """Where a video's frames are and their size, or None (reported)."""
    folder = Path(video_dir) if video_dir else None
    where = {"file": str(slp), "field": f"videos[{index}]"}
    if isinstance(video.filename, list):  # an image sequence (ImageVideo / SingleImageVideo)
        return _image_sequence(video, index, slp, folder, report)
    stored = str(video.filename)
    src = find_video(stored, slp, folder)
    if src is None:
        report.add(Problem("video-missing", f"video {stored} not found "
                           f"({_not_found(stored, slp)})", **where), skipped="video")  # fmt: skip
        return None
    meta = getattr(video, "backend_metadata", None) or {}
    shape = meta.get("shape")
    if not shape:
        try:
            shape = _sio().Video.from_filename(str(src), dataset=video_dataset(video)).shape
        except Exception as e:  # the video backends' own errors
            report.add(Problem("video-unreadable", f"video {src}: {e}", **where),
                       skipped="video")  # fmt: skip
            return None
    h, w = int(shape[1]), int(shape[2])
    try:  # a frame is decoded whole: its declared size is checked before any is read
        check_pixels(w, h, f"video {stored}")
    except ImageReadError as e:
        report.add(Problem(e.code, str(e), **where), skipped="video")
        return None
    # embedded frames (.pkg.slp) are indexed by their source frame numbers: no range check
    n = 0 if video_dataset(video) else int(shape[0])
    stem = f"{index:02d}_{Path(stored.replace(chr(92), '/')).stem}"
    return VideoFrames(stem, n, h, w, path=src)


def _image_sequence(
    video: Any, index: int, slp: Path, folder: Path | None, report: LoadReport
) -> VideoFrames | None:
    stored = tuple(str(f) for f in video.filename)
    if not stored:
        report.add(Problem("video-missing", "an image sequence with no images", str(slp),
                           field=f"videos[{index}]"), skipped="video")  # fmt: skip
        return None
    files = tuple(find_video(f, slp, folder) for f in stored)
    first = Path(stored[0].replace("\\", "/"))
    stem = f"{index:02d}_{first.parent.name or first.stem}"
    return VideoFrames(stem, len(stored), 0, 0, files=files, stored=stored)


def extract_frames(ds: KeypointDataset, folder: Path) -> None:
    """Write the frames `read_sleap` named into `folder` (each video opened once, JPEG at
    quality 95 or PNG as the file names say) and make it the dataset's image root. Every
    frame's declared size is checked against the pixel cap before it is decoded (an embedded
    PNG can declare 20000x20000 pixels in a few hundred bytes)."""
    sio = _sio()
    by_video: dict[tuple[str, str | None], list[ImageInfo]] = {}
    for im in ds.images:
        if im.frame is not None:
            by_video.setdefault((im.frame.source, im.frame.dataset), []).append(im)
    for (src, dataset), images in by_video.items():
        if images[0].frame.image_sequence:  # type: ignore[union-attr]  # an image file
            for im in images:
                _write_frame(read_image(src, size=(im.width, im.height)), folder, im, src)
            continue
        video = sio.Video.from_filename(src, dataset=dataset, grayscale=False)
        try:
            for im in images:
                _check_embedded(video, im, src)
                frame = np.asarray(video[im.frame.index])  # type: ignore[union-attr]
                if frame.ndim == 3 and frame.shape[2] == 1:
                    frame = frame[..., 0]
                bgr = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                _write_frame(bgr, folder, im, src)
        finally:
            video.close()
    ds.image_root = folder


def _check_embedded(video: Any, im: ImageInfo, src: str) -> None:
    """Refuse an embedded frame whose encoded header declares more pixels than the cap, or
    another size than its video says, before it is decoded."""
    index = im.frame.index  # type: ignore[union-attr]
    raw = getattr(video.backend, "get_frame_raw_bytes", lambda _: None)(index)
    if raw is None:  # a media file's frame, or raw pixels: their size was checked when read
        return
    name = f"{src}: embedded frame {index}"
    try:
        header = require_header(np.asarray(raw).view(np.uint8), name)
        check_pixels(header.width, header.height, name, None, header.decoded_pixels)
    except ImageReadError as e:
        raise DatasetError(f"{e} [{e.code}]") from None
    if (header.width, header.height) != (im.width, im.height):
        raise DatasetError(f"{name} is {header.width}x{header.height}, but the file says its "
                           f"frames are {im.width}x{im.height}")  # fmt: skip


def _write_frame(image: np.ndarray, folder: Path, im: ImageInfo, src: str) -> None:
    out = join_inside(folder, im.file_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if out.suffix == ".jpg" else []
    index = im.frame.index if im.frame is not None else "?"
    if not cv2.imwrite(str(out), image, params):
        raise DatasetError(f"{out}: could not write frame {index} of {src}")
    im.frame = None  # an image file now, checked as any other
