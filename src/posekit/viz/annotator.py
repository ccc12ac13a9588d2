"""Drawing keypoints, skeletons and boxes for any schema.

Left limbs are drawn in one colour family and right limbs in another, so a left/right swap is
visible at a glance. Line width, joint radius and font scale follow the image size, so the same
settings work from 64 px thumbnails to 4K frames. Coordinates are continuous (pixel centres at
+0.5), drawn with sub-pixel precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from posekit.schema import KeypointSchema

# BGR colours by side: left = blue family, right = orange family, centre = green.
SIDE_COLORS = {"left": (255, 128, 0), "right": (0, 128, 255), "center": (60, 200, 60)}
_SHIFT = 4
MIN_LABEL_SIZE = 160  # px: smaller images get no text labels


def drawing_colors(
    schema: KeypointSchema,
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """(BGR colour per skeleton edge, per keypoint) as the annotator draws them: the schema's
    own edge colours if it has them, else by side (what the server's page uses too)."""
    edges = list(schema.edge_colors or [SIDE_COLORS[s] for s in schema.edge_sides()])
    return edges, [SIDE_COLORS[s] for s in schema.sides()]  # type: ignore[misc]


#: Farthest a point is drawn from the image, in pixels (a 1e308 coordinate is drawn there,
#: off the image, instead of overflowing the fixed-point conversion).
_FAR = 1e6


def _pt(xy: np.ndarray) -> tuple[int, int]:
    xy = np.clip(np.asarray(xy, dtype=np.float64), -_FAR, _FAR)
    p = np.round((xy - 0.5) * (1 << _SHIFT)).astype(np.int64)
    return int(p[0]), int(p[1])


@dataclass
class SkeletonAnnotator:
    """Draws instances of one schema onto an image.

    `keypoints` are (N, K, 3): x, y and either COCO visibility (0 hidden, 1 occluded: drawn
    hollow, 2 visible) or a confidence in [0, 1] compared with `kpt_threshold`.

    Example:
        >>> ann = SkeletonAnnotator(get_schema("coco17"))  # doctest: +SKIP
        >>> out = ann.annotate(image, keypoints, boxes)     # doctest: +SKIP
    """

    schema: KeypointSchema
    line_scale: float = 1.0
    kpt_threshold: float = 0.5
    show_hidden: bool = False  # draw below-threshold keypoints faintly instead of hiding them
    visibility_flags: bool = True  # keypoints[..., 2] holds COCO flags, not confidences
    line_width: int | None = None  # line thickness in pixels (default: by image size)
    font_size: float | None = None  # label text height in pixels (default: by image size)

    def sizes(self, image: np.ndarray) -> tuple[int, int, float]:
        """Line thickness, joint radius and font scale for this image size (or the widths
        given)."""
        s = max(image.shape[:2])
        thick = max(1, round(s / 320 * self.line_scale))
        radius = max(1, round(s / 200 * self.line_scale))
        if self.line_width is not None:
            thick, radius = max(1, self.line_width), max(1, round(1.6 * self.line_width))
        # OpenCV's simplex font is about 22 px tall at scale 1
        font = self.font_size / 22 if self.font_size else max(0.3, s / 1600)
        return thick, radius, font

    def annotate(
        self,
        image: np.ndarray,
        keypoints: np.ndarray,
        boxes: np.ndarray | None = None,
        labels: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Return a copy of `image` (BGR) with boxes (N, 4) xyxy, skeletons and labels drawn."""
        out = image.copy()
        if out.ndim == 2:
            out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
        thick, radius, font = self.sizes(out)
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, self.schema.num_keypoints, 3)
        edge_colors, kpt_colors = drawing_colors(self.schema)
        if boxes is not None:
            for i, b in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
                cv2.rectangle(
                    out, _pt(b[:2]), _pt(b[2:]), (0, 220, 220), thick, cv2.LINE_AA, _SHIFT
                )
                # below MIN_LABEL_SIZE px a label would cover the objects it names
                if labels is not None and i < len(labels) and max(out.shape[:2]) >= MIN_LABEL_SIZE:
                    org = (int(b[0]), max(int(b[1]) - 3, int(12 * font * 2)))
                    cv2.putText(
                        out,
                        labels[i],
                        org,
                        cv2.FONT_HERSHEY_SIMPLEX,
                        font,
                        (0, 220, 220),
                        max(1, thick // 2),
                        cv2.LINE_AA,
                    )
        faint = out.copy() if self.show_hidden else None
        for inst in kp:
            shown, hollow = self._state(inst[:, 2])
            for (a, b), color in zip(self.schema.skeleton, edge_colors, strict=True):
                if shown[a] and shown[b]:
                    cv2.line(
                        out, _pt(inst[a, :2]), _pt(inst[b, :2]), color, thick, cv2.LINE_AA, _SHIFT
                    )
                elif faint is not None:
                    cv2.line(
                        faint, _pt(inst[a, :2]), _pt(inst[b, :2]), color, thick, cv2.LINE_AA, _SHIFT
                    )
            for j in range(len(inst)):
                c = _pt(inst[j, :2])
                r = radius << _SHIFT
                if shown[j] and hollow[j]:  # occluded: a ring
                    cv2.circle(out, c, r, kpt_colors[j], max(1, thick // 2), cv2.LINE_AA, _SHIFT)
                elif shown[j]:  # visible: a dot with a thin white rim (readable on any colour)
                    if radius >= 3:  # on thumbnails a rim would swallow the dot
                        rim = r + (max(1, thick // 3) << _SHIFT)
                        cv2.circle(out, c, rim, (255, 255, 255), -1, cv2.LINE_AA, _SHIFT)
                    cv2.circle(out, c, r, kpt_colors[j], -1, cv2.LINE_AA, _SHIFT)
                elif faint is not None:
                    cv2.circle(faint, c, r, kpt_colors[j], -1, cv2.LINE_AA, _SHIFT)
        if faint is not None:
            out = cv2.addWeighted(out, 0.7, faint, 0.3, 0) if faint is not None else out
        return out

    def _state(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.visibility_flags:
            return v > 0, v == 1
        return v >= self.kpt_threshold, np.zeros(len(v), dtype=bool)


def grid(images: Sequence[np.ndarray], cols: int = 4, cell: int = 320) -> np.ndarray:
    """Tile images (resized to fit `cell` x `cell`, keeping aspect) into one contact sheet."""
    rows = max(1, -(-len(images) // cols))
    sheet = np.full((rows * cell, cols * cell, 3), 32, dtype=np.uint8)
    for i, im in enumerate(images):
        s = cell / max(im.shape[:2])
        small = cv2.resize(
            im,
            (max(1, round(im.shape[1] * s)), max(1, round(im.shape[0] * s))),
            interpolation=cv2.INTER_AREA,
        )
        r, c = divmod(i, cols)
        y0 = r * cell + (cell - small.shape[0]) // 2
        x0 = c * cell + (cell - small.shape[1]) // 2
        sheet[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    return sheet
