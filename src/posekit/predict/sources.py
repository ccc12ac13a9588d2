"""Prediction sources: images, folders, globs, lists, arrays, PIL images, videos, cameras and
streams, all read as one lazy sequence of `Frame`s.

Videos and streams are decoded one frame at a time (never all in memory). An unreadable image
becomes a `Frame` with an `error`, so a caller can report it by name and go on with the rest.
"""

from __future__ import annotations

import glob
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from posekit.data.images import ImageReadError, read_image
from posekit.utils.errors import UserError

#: the formats `posekit.data.image_headers` reads
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm", ".pnm"}
)
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg"})
STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class SourceError(UserError):
    """A prediction source that cannot be used at all (missing path, empty folder ...)."""


@dataclass
class Frame:
    """One image to predict on: BGR pixels (None when unreadable, with `error` saying why)."""

    image: np.ndarray | None
    path: str  # file, video or stream it came from ("image0" for arrays)
    index: int = 0  # frame index within a video or stream; 0 for still images
    timestamp: float | None = None  # seconds since the start of a video or stream
    error: str | None = None
    video: bool = False


@dataclass
class VideoInfo:
    """What a video writer needs to reproduce the input: frame rate, size and frame count."""

    fps: float
    width: int
    height: int
    frames: int  # 0 when unknown (streams)


def _is_pil(obj: Any) -> bool:
    return hasattr(obj, "convert") and hasattr(obj, "size") and hasattr(obj, "mode")


def _pil_to_bgr(img: Any) -> np.ndarray:
    rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb[..., ::-1])


def _array_to_bgr(a: np.ndarray, name: str) -> np.ndarray:
    if a.ndim == 2:
        a = cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.size == 0:
        raise SourceError(f"{name}: expected an (H, W, 3) BGR image array, got shape {a.shape}")
    if a.shape[2] == 4:
        a = a[..., :3]
    if a.dtype != np.uint8:
        raise SourceError(f"{name}: expected a uint8 image array, got {a.dtype}")
    return np.ascontiguousarray(a)


def read_frame(path: str) -> Frame:
    """A still image file as a `Frame` (with `error` set when it cannot be read), read by
    `posekit.data.read_image`: EXIF orientation applied, pixel cap enforced."""
    try:
        return Frame(read_image(path), path)
    except ImageReadError as e:
        return Frame(None, path, error=str(e).removeprefix(f"{path}: "))


def open_video(source: str | int) -> cv2.VideoCapture:
    """An OpenCV capture of `source`, with OpenCV's and FFmpeg's own messages silenced: a
    camera index that does not exist or a file without its index would print lines of
    theirs before posekit's one line that says the same."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # read at the first capture
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2.VideoCapture(source)


def video_info(source: str | int) -> VideoInfo:
    cap = open_video(source)
    try:
        if not cap.isOpened():
            raise SourceError(f"{source}: cannot open video")
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        return VideoInfo(
            fps,
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))),
        )
    finally:
        cap.release()


def read_video(source: str | int, *, vid_stride: int = 1) -> Iterator[Frame]:
    """Frames of a video file, camera index or stream URL, decoded lazily; timestamps come
    from the container (falling back to index / fps where it gives none)."""
    cap = open_video(source)
    if not cap.isOpened():
        raise SourceError(f"{source}: cannot open video or stream")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    name = str(source)
    index = 0
    try:
        while True:
            ok = cap.grab()
            if not ok:
                break
            if index % vid_stride == 0:
                ok, img = cap.retrieve()
                if not ok:
                    break
                ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                t = ms / 1000.0 if ms > 0 or index == 0 else index / fps
                yield Frame(img, name, index, t, video=True)
            index += 1
    finally:
        cap.release()


def _expand_path(p: str) -> list[str]:
    """A path, folder or glob as the sorted list of image / video files it names."""
    if any(c in p for c in "*?["):
        # glob.glob, not Path.glob: the pattern may be absolute and span folders
        files = sorted(f for f in glob.glob(p, recursive=True) if Path(f).is_file())  # noqa: PTH207
        if not files:
            raise SourceError(f"{p}: the pattern matches no files")
        return files
    path = Path(p)
    if path.is_dir():
        files = sorted(
            str(f) for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
        )
        if not files:
            raise SourceError(f"{p}: no images or videos in this folder")
        return files
    if not path.exists():
        raise SourceError(f"{p}: no such file or folder")
    return [p]


def _is_stream(s: str) -> bool:
    return s.isdigit() or s.lower().startswith(STREAM_PREFIXES)


def iter_frames(source: Any, *, vid_stride: int = 1) -> Iterator[Frame]:
    """Every frame of `source`: a path, folder, glob, list of these, an (H, W, 3) BGR array,
    a PIL image, a video file, a camera index or a stream URL.

    Raises `SourceError` up front for a source that names nothing (missing path, empty folder);
    unreadable images inside a folder or list come through as frames with `error` set.
    """
    items = expand_source(source)

    def frames() -> Iterator[Frame]:
        for kind, value, name in items:
            if kind == "array":
                yield Frame(value, name)
            elif kind == "video":
                yield from read_video(value, vid_stride=vid_stride)
            else:
                yield read_frame(value)

    return frames()


def expand_source(source: Any) -> list[tuple[str, Any, str]]:
    """Check a source and expand it into (kind, value, name) items (kind: "array", "image" or
    "video") before anything is decoded; `SourceError` when it names nothing usable."""
    if isinstance(source, np.ndarray):
        return [("array", _array_to_bgr(source, "image0"), "image0")]
    if _is_pil(source):
        return [("array", _pil_to_bgr(source), getattr(source, "filename", "") or "image0")]
    if isinstance(source, int):
        return [("video", source, str(source))]
    if isinstance(source, str | Path):
        s = str(source)
        if _is_stream(s):
            return [("video", int(s) if s.isdigit() else s, s)]
        return [_file_item(f) for f in _expand_path(s)]
    if isinstance(source, Iterable):
        out: list[tuple[str, Any, str]] = []
        for i, item in enumerate(source):
            if isinstance(item, np.ndarray):
                out.append(("array", _array_to_bgr(item, f"image{i}"), f"image{i}"))
            elif _is_pil(item):
                out.append(("array", _pil_to_bgr(item), f"image{i}"))
            elif isinstance(item, str | Path):
                out.extend(_file_item(f) for f in _expand_path(str(item)))
            else:
                raise SourceError(f"source item {i}: unsupported type {type(item).__name__}")
        if not out:
            raise SourceError("empty source list")
        return out
    raise SourceError(f"unsupported source type {type(source).__name__}")


def count_frames(items: list[tuple[str, Any, str]], vid_stride: int = 1) -> int | None:
    """Frames that `expand_source` items will yield (None when a camera's or stream's length
    is unknown), for progress bars."""
    total = 0
    for kind, value, _ in items:
        if kind != "video":
            total += 1
            continue
        n = video_info(value).frames if not isinstance(value, int) else 0
        if n <= 0:
            return None
        total += -(-n // vid_stride)
    return total


def _file_item(f: str) -> tuple[str, Any, str]:
    return ("video" if Path(f).suffix.lower() in VIDEO_SUFFIXES else "image", f, f)


T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate `items` in a background thread, `depth` ahead: decoding and resizing (which
    release the GIL in OpenCV) overlap with inference in the caller's thread."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(_Raised(e))
        q.put(_DONE)

    thread = threading.Thread(target=work, daemon=True, name="posekit-prefetch")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.01)


@dataclass
class _Raised:
    error: BaseException


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to `size` consecutive items (the last may be shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
