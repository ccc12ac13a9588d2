"""Prediction results: dataclasses of NumPy arrays in original-image pixels.

`Results` holds one image's detections; `Boxes` and `Keypoints` check their shapes, slice by
instance (`r[0]`, `r[r.boxes.conf > 0.5]`) and convert to JSON and COCO results. Keypoints
below the confidence threshold are kept with their confidence (`visible` says which pass it);
they are never replaced by (0, 0).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posekit.schema import KeypointSchema
from posekit.utils.errors import UserError

Index = int | slice | np.ndarray | list[int]
log = logging.getLogger(__name__)


def _rows(index: Index) -> np.ndarray | slice:
    """An instance index as something that keeps the leading axis (an int becomes [i])."""
    if isinstance(index, (int, np.integer)):
        return np.array([index])
    return index if isinstance(index, slice) else np.asarray(index)


@dataclass
class Boxes:
    """Boxes of N instances: `xyxy` (N, 4) pixels, `conf` (N,), `cls` (N,) class index, and
    `id` (N,) track ids once tracked (None before)."""

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray
    orig_shape: tuple[int, int]  # (height, width)
    id: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float64).reshape(-1, 4)
        n = len(self.xyxy)
        self.conf = np.asarray(self.conf, dtype=np.float64).reshape(-1)
        self.cls = np.asarray(self.cls, dtype=np.int64).reshape(-1)
        if self.id is not None:
            self.id = np.asarray(self.id, dtype=np.int64).reshape(-1)
        for name in ("conf", "cls", "id"):
            v = getattr(self, name)
            if v is not None and len(v) != n:
                raise ValueError(f"Boxes.{name} has {len(v)} rows for {n} boxes")

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Index) -> Boxes:
        i = _rows(index)
        ids = None if self.id is None else self.id[i]
        return Boxes(self.xyxy[i], self.conf[i], self.cls[i], self.orig_shape, ids)

    @property
    def xywh(self) -> np.ndarray:
        """(N, 4) centre x, centre y, width, height."""
        x1, y1, x2, y2 = self.xyxy.T
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)

    @property
    def xyxyn(self) -> np.ndarray:
        h, w = self.orig_shape
        return self.xyxy / np.array([w, h, w, h], dtype=np.float64)


@dataclass
class Keypoints:
    """Keypoints of N instances: `data` (N, K, 3) with x, y in original pixels (continuous
    coordinates: the centre of the top-left pixel is (0.5, 0.5)) and a confidence in [0, 1]."""

    data: np.ndarray
    orig_shape: tuple[int, int]  # (height, width)
    names: tuple[str, ...]  # keypoint names, one per K slot
    kpt_conf: float = 0.5  # `visible` threshold

    def __post_init__(self) -> None:
        k = len(self.names)
        data = np.asarray(self.data, dtype=np.float64)
        if data.size == 0:
            data = data.reshape(0, k, 3)
        elif data.ndim != 3 or data.shape[1:] != (k, 3):  # a reshape would mix instances
            raise ValueError(f"keypoints: data of shape {data.shape} is not (N, {k}, 3) for "
                             f"{k} keypoint names")  # fmt: skip
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Index | str) -> Any:
        """`kp["left_wrist"]` -> (N, 3) x, y, conf of that keypoint; otherwise a subset."""
        if isinstance(index, str):
            if index not in self.names:
                raise KeyError(f"no keypoint {index!r}; known: {', '.join(self.names)}")
            return self.data[:, self.names.index(index)]
        return Keypoints(self.data[_rows(index)], self.orig_shape, self.names, self.kpt_conf)

    @property
    def xy(self) -> np.ndarray:
        return self.data[..., :2]

    @property
    def xyn(self) -> np.ndarray:
        h, w = self.orig_shape
        return self.data[..., :2] / np.array([w, h], dtype=np.float64)

    @property
    def conf(self) -> np.ndarray:
        return self.data[..., 2]

    @property
    def visible(self) -> np.ndarray:
        return self.data[..., 2] >= self.kpt_conf


@dataclass
class Results:
    """Detections of one image (or video frame).

    Example:
        >>> r = model("street.jpg")[0]                         # doctest: +SKIP
        >>> r.keypoints["left_wrist"], r[r.boxes.conf > 0.5]   # doctest: +SKIP
    """

    boxes: Boxes
    keypoints: Keypoints
    names: dict[int, str]  # class index -> class name
    schemas: list[KeypointSchema]  # one per class
    path: str = ""
    orig_img: np.ndarray | None = field(default=None, repr=False)  # BGR
    speed: dict[str, float] = field(default_factory=dict)  # ms: preprocess, inference, postprocess
    frame: int | None = None  # index in a video or stream
    timestamp: float | None = None  # seconds since the start of a video or stream
    category_ids: list[int] | None = None  # class index -> dataset category id (for COCO)
    #: (N, K, 3) root-relative 3D keypoints in metres in the camera's frame, from a lifting
    #: network (`Model.track(..., lift=...)`); None without one
    keypoints3d: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.boxes) != len(self.keypoints):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.keypoints)} keypoint sets")
        if self.keypoints3d is not None and len(self.keypoints3d) != len(self.keypoints):
            raise ValueError(
                f"{len(self.keypoints3d)} 3D poses for {len(self.keypoints)} keypoint sets"
            )

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: Index) -> Results:
        return Results(
            self.boxes[index],
            self.keypoints[index],
            self.names,
            self.schemas,
            self.path,
            self.orig_img,
            self.speed,
            self.frame,
            self.timestamp,
            self.category_ids,
            None if self.keypoints3d is None else self.keypoints3d[_rows(index)],
        )

    @property
    def schema(self) -> KeypointSchema:
        """The keypoint schema (of the first class, when a model has several)."""
        return self.schemas[0]

    @property
    def orig_shape(self) -> tuple[int, int]:
        return self.boxes.orig_shape

    def empty(self) -> bool:
        return len(self) == 0

    def plot(
        self,
        *,
        kpt_conf: float | None = None,
        boxes: bool = True,
        labels: bool = True,
        conf: bool = True,
        show_hidden: bool = False,
        image: np.ndarray | None = None,
        line_scale: float = 1.0,
        line_width: int | None = None,
        font_size: float | None = None,
        show: bool = False,
        save: bool = False,
        filename: str | Path | None = None,
    ) -> np.ndarray:
        """The image (BGR) with boxes, skeletons and labels (class name, and the score with
        `conf`) drawn; keypoints below `kpt_conf` are hidden, or drawn faint with
        `show_hidden`. `line_width` / `font_size` are pixels (default: by image size);
        `save` writes it to `filename` (default: the source's name with `_pred`), `show`
        displays it (as `show()`). Ultralytics' `plot` options, so its users' code runs."""
        out = self._draw(
            kpt_conf, boxes, labels, conf, show_hidden, image, line_scale, line_width, font_size
        )
        if save:
            target = filename or f"{Path(self.path or 'image').stem}_pred.jpg"
            write_image(Path(target), out)
        if show:
            display(out, self.path or "posekit")
        return out

    def show(self, **plot_options: Any) -> None:
        """Display the drawn image in a window; where there is none (no display, headless
        OpenCV), one log line says so and nothing else happens."""
        display(self.plot(**plot_options), self.path or "posekit")

    def _draw(
        self,
        kpt_conf: float | None,
        boxes: bool,
        labels: bool,
        conf: bool,
        show_hidden: bool,
        image: np.ndarray | None,
        line_scale: float,
        line_width: int | None,
        font_size: float | None,
    ) -> np.ndarray:
        from posekit.viz.annotator import SkeletonAnnotator

        img = image if image is not None else self.orig_img
        if img is None:
            raise UserError("no image to draw on: pass image=")
        out = img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        thr = self.keypoints.kpt_conf if kpt_conf is None else kpt_conf
        for c in np.unique(self.boxes.cls) if len(self) else []:
            sel = np.nonzero(self.boxes.cls == c)[0]
            schema = self.schemas[int(c)]
            ann = SkeletonAnnotator(
                schema,
                line_scale=line_scale,
                kpt_threshold=thr,
                show_hidden=show_hidden,
                visibility_flags=False,
                line_width=line_width,
                font_size=font_size,
            )
            text = None
            if labels:
                text = [self._label(i, conf) for i in sel]
            out = ann.annotate(
                out,
                self.keypoints.data[sel, : schema.num_keypoints],
                self.boxes.xyxy[sel] if boxes else None,
                text,
            )
        return out.copy() if out is img else out

    def _label(self, i: int, conf: bool = True) -> str:
        name = self.names.get(int(self.boxes.cls[i]), str(self.boxes.cls[i]))
        tid = "" if self.boxes.id is None else f"#{self.boxes.id[i]} "
        return f"{tid}{name} {self.boxes.conf[i]:.2f}" if conf else f"{tid}{name}"

    def save(self, path: str | Path, **plot_options: Any) -> Path:
        """Write the annotated image to `path`."""
        return write_image(Path(path), self.plot(**plot_options))

    def to_dicts(self) -> list[dict[str, Any]]:
        """One dict per instance: class, confidence, box and named keypoints."""
        out = []
        for i in range(len(self)):
            c = int(self.boxes.cls[i])
            schema = self.schemas[c]
            kp = self.keypoints.data[i, : schema.num_keypoints]
            d: dict[str, Any] = {
                "class": c,
                "name": self.names.get(c, str(c)),
                "confidence": round(float(self.boxes.conf[i]), 5),
                "box": dict(
                    zip(
                        ("x1", "y1", "x2", "y2"),
                        (round(float(v), 3) for v in self.boxes.xyxy[i]),
                        strict=True,
                    )
                ),
                "keypoints": [
                    {
                        "name": n,
                        "x": round(float(x), 3),
                        "y": round(float(y), 3),
                        "confidence": round(float(s), 5),
                    }
                    for n, (x, y, s) in zip(schema.keypoints, kp, strict=True)
                ],
            }
            if self.boxes.id is not None:
                d["track_id"] = int(self.boxes.id[i])
            out.append(d)
        return out

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dicts(), indent=indent)

    def to_coco(self, image_id: int, category_ids: list[int] | None = None) -> list[dict[str, Any]]:
        """COCO keypoint results (`posekit val --pred` and pycocotools read them): keypoints
        as flat x, y, confidence triples, `bbox` as x, y, w, h, `score` the detection's.
        Keypoints and scores keep full precision, so that evaluating these results gives
        exactly what `Model.val` reports (rounding can reorder tied scores)."""
        cats = category_ids or self.category_ids or [c + 1 for c in range(len(self.schemas))]
        out = []
        for i in range(len(self)):
            c = int(self.boxes.cls[i])
            kp = self.keypoints.data[i, : self.schemas[c].num_keypoints]
            x1, y1, x2, y2 = (float(v) for v in self.boxes.xyxy[i])
            out.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(cats[c]),
                    "keypoints": [float(v) for v in kp.reshape(-1)],
                    "score": float(self.boxes.conf[i]),
                    "bbox": [round(v, 3) for v in (x1, y1, x2 - x1, y2 - y1)],
                }
            )
        return out


def write_image(path: Path, image: np.ndarray) -> Path:
    """`image` written to `path` (its folder made), or an OSError naming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")
    return path


def display(image: np.ndarray, title: str) -> None:
    """Show `image` in a window until a key is pressed; without a display (or with OpenCV's
    headless build, posekit's) one log line says that nothing was shown."""
    note = (
        "show(): %s; nothing was shown (save the picture with plot(save=True, "
        "filename=...) or save(path))"
    )
    if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        log.info(note, "no display here")
        return
    try:
        cv2.imshow(title, image)
        cv2.waitKey(0)
    except cv2.error:
        log.info(note, "this OpenCV has no windows (headless build)")


def _slot_names(schemas: list[KeypointSchema], k: int) -> tuple[str, ...]:
    """Keypoint names per slot: the first schema's, and `kpt<j>` for slots it does not use."""
    first = schemas[0].keypoints
    return tuple(first[j] if j < len(first) else f"kpt{j}" for j in range(k))
