"""Writing prediction outputs: annotated images and videos, COCO results JSON, YOLO-style txt.

Drawing and encoding run on a background thread (`BackgroundWorker`), so saving a video does
not hold up the network.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posekit.predict.results import Results
from posekit.predict.sources import VideoInfo, video_info


class BackgroundWorker:
    """Runs submitted calls in order on one thread; `close()` waits for them and re-raises
    the first error."""

    def __init__(self, depth: int = 8) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, daemon=True, name="posekit-writer")
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            if self._error is None:
                try:
                    job()
                except BaseException as e:  # kept and re-raised in the caller's thread
                    self._error = e

    def submit(self, job: Callable[[], None]) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(job)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class VideoSink:
    """An annotated copy of a video: same frame rate and size as the input (mp4v in .mp4)."""

    def __init__(self, path: Path, info: VideoInfo) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        self.writer = cv2.VideoWriter(str(path), fourcc, info.fps, (info.width, info.height))
        if not self.writer.isOpened():
            raise OSError(f"cannot write video {path}")
        self.frames = 0

    @classmethod
    def for_source(cls, path: Path, source: str, frame_shape: tuple[int, int]) -> VideoSink:
        """A sink for the annotated frames of `source`: a file keeps its frame rate, a camera
        or stream gets a nominal 30 fps; the size is the frames' (height, width)."""
        fps = video_info(source).fps if Path(source).is_file() else 30.0
        h, w = frame_shape
        return cls(path, VideoInfo(fps, w, h, 0))

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        self.writer.release()


def yolo_lines(r: Results) -> list[str]:
    """One line per instance: class, box centre x, y, width, height, then x, y, confidence
    per keypoint (coordinates normalised to the image), then the detection confidence."""
    h, w = r.orig_shape
    lines = []
    for i in range(len(r)):
        c = int(r.boxes.cls[i])
        k = r.schemas[c].num_keypoints
        box = r.boxes.xywh[i] / np.array([w, h, w, h])
        kp = r.keypoints.data[i, :k].copy()
        kp[:, 0] /= w
        kp[:, 1] /= h
        values = [*box, *kp.reshape(-1), r.boxes.conf[i]]
        lines.append(" ".join([str(c)] + [f"{v:.6f}" for v in values]))
    return lines


class CocoResultsWriter:
    """Collects COCO keypoint results; every entry also names its `file_name` (and `frame`
    for videos) so `posekit val --pred` can match it to a dataset's images."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._ids: dict[tuple[str, int | None], int] = {}

    def add(self, r: Results) -> None:
        key = (r.path, r.frame)
        image_id = self._ids.setdefault(key, len(self._ids) + 1)
        for e in r.to_coco(image_id):
            e["file_name"] = r.path
            if r.frame is not None:
                e["frame"] = r.frame
            self.entries.append(e)

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.entries))
        return path
