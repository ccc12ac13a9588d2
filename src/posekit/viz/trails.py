"""Track ids and fading motion trails on video frames."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np


def id_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour per track id (golden-ratio hues)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


@dataclass
class TrailAnnotator:
    """Remembers each track's last `length` positions (box bottom centre: where it stands) and
    draws them as a line that fades with age, plus the id at the box's top-left corner."""

    length: int = 30
    history: dict[int, deque[tuple[float, float]]] = field(default_factory=dict)

    def annotate(self, image: np.ndarray, ids: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        out = image
        s = max(image.shape[:2])
        thick = max(1, round(s / 400))
        for tid, b in zip(np.asarray(ids).tolist(), np.asarray(boxes).reshape(-1, 4), strict=True):
            trail = self.history.setdefault(tid, deque(maxlen=self.length))
            trail.append(((b[0] + b[2]) / 2, b[3]))
        present = set(np.asarray(ids).tolist())
        for tid in [t for t in self.history if t not in present]:
            self.history[tid].popleft()  # a vanished track's trail shrinks away
            if not self.history[tid]:
                del self.history[tid]
        # older halves of the trails are blended in at half strength, newer halves solid
        faded = out.copy()
        for recent in (False, True):
            for tid, trail in self.history.items():
                pts = np.array(trail)
                n = len(pts)
                for j in range(1, n):
                    if (j >= n / 2) != recent:
                        continue
                    w = max(1, round(thick * 2 * j / n))  # thinner with age too
                    p0 = (int(pts[j - 1][0]), int(pts[j - 1][1]))
                    p1 = (int(pts[j][0]), int(pts[j][1]))
                    cv2.line(out if recent else faded, p0, p1, id_color(tid), w, cv2.LINE_AA)
            if not recent:
                out = cv2.addWeighted(faded, 0.5, out, 0.5, 0)
        font = max(0.4, s / 1400)
        for tid, b in zip(np.asarray(ids).tolist(), np.asarray(boxes).reshape(-1, 4), strict=True):
            org = (int(b[0]) + 2, int(b[1]) + int(22 * font * 1.5))
            for color, width in (((0, 0, 0), thick + 2), (id_color(tid), thick)):  # outlined
                cv2.putText(
                    out,
                    f"#{tid}",
                    org,
                    cv2.FONT_HERSHEY_SIMPLEX,
                    font * 1.3,
                    color,
                    width,
                    cv2.LINE_AA,
                )
        return out
