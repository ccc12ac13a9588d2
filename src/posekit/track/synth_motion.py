"""Synthetic motion with known actions, as posekit.track/1 events: COCO-17 stick figures that
squat a known number of times, fall at a known time or walk, turned into events exactly as
`posekit track` writes them (`frame_events` on tracked `Results`). The actions tests record
their event files with it and `benchmarks/actions_synth.py` scores the rules against it
(with keypoint noise and dropouts added by `noisy`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from posekit.predict.predictor import keypoint_extent
from posekit.predict.results import Boxes, Keypoints, Results
from posekit.schema import get_schema
from posekit.track.events import frame_events

COCO = get_schema("coco17")
FPS = 30.0


def figure(hip: tuple[float, float], height: float, knee_angle: float) -> np.ndarray:
    """(17, 3) COCO keypoints of an upright figure with its hips at `hip`, standing `height`
    px tall, both knees bent to `knee_angle` degrees (the thigh tilts, the shin is vertical)."""
    hx, hy = hip
    seg = height * 0.25  # thigh and shin length
    theta = np.radians(180.0 - knee_angle)  # thigh tilt from vertical
    knee = np.array([hx + seg * np.sin(theta), hy + seg * np.cos(theta)])
    ankle = knee + [0.0, seg]
    kp = np.zeros((17, 3))
    kp[:, 2] = 0.9
    top = hy - height * 0.5
    upper = {0: (hx, top + 0.08 * height), 1: (hx - 5, top + 0.06 * height),
             2: (hx + 5, top + 0.06 * height), 3: (hx - 10, top + 0.08 * height),
             4: (hx + 10, top + 0.08 * height), 5: (hx - 20, top + 0.2 * height),
             6: (hx + 20, top + 0.2 * height), 7: (hx - 25, top + 0.33 * height),
             8: (hx + 25, top + 0.33 * height), 9: (hx - 27, top + 0.45 * height),
             10: (hx + 27, top + 0.45 * height)}  # fmt: skip
    for i, xy in upper.items():
        kp[i, :2] = xy
    for side, dx in ((0, -10.0), (1, 10.0)):
        kp[11 + side, :2] = (hx + dx, hy)
        kp[13 + side, :2] = knee + [dx, 0]
        kp[15 + side, :2] = ankle + [dx, 0]
    return kp


def results(frame: int, keypoints: np.ndarray, ids: list[int], source: str) -> Results:
    """Tracked `Results` of one frame: (N, 17, 3) keypoints, boxes around the labelled ones
    (confidence > 0)."""
    kp = np.asarray(keypoints, dtype=np.float32).reshape(-1, 17, 3)
    # unlabelled keypoints sit at (0, 0) with confidence 0: the smallest positive float32
    # is the first confidence that counts
    box = keypoint_extent(kp, float(np.finfo(np.float32).tiny), np.zeros((len(kp), 4)))
    box = box + np.array([-5.0, -5.0, 5.0, 5.0])
    n = len(kp)
    shape = (720, 1280)
    boxes = Boxes(box, np.full(n, 0.9, np.float32), np.zeros(n, np.int64), shape,
                  np.asarray(ids, np.int64))  # fmt: skip
    return Results(boxes, Keypoints(kp, shape, tuple(COCO.keypoints)), {0: "person"}, [COCO],
                   path=source, frame=frame, timestamp=frame / FPS)  # fmt: skip


def squats(count: int, *, start: float = 1.0, period: float = 2.0, seconds: float | None = None,
           hip=(400.0, 300.0), height: float = 300.0) -> list[np.ndarray]:  # fmt: skip
    """Per frame, the keypoints of a figure doing `count` squats (knee 175 -> 80 -> 175 degrees),
    the first starting at `start` s, one every `period` s; standing otherwise."""
    total = seconds if seconds is not None else start + count * period + 1.0
    out = []
    for f in range(int(total * FPS)):
        t = f / FPS
        k = (t - start) / period
        bent = 0.0 if k < 0 or k >= count else np.sin(np.pi * (k % 1.0)) ** 2
        angle = 175.0 - 95.0 * bent
        drop = 0.18 * height * bent  # the hips go down as the knees bend
        out.append(figure((hip[0], hip[1] + drop), height, angle))
    return out


def fall(at: float, *, seconds: float = 6.0, hip=(600.0, 300.0), height: float = 300.0,
         duration: float = 0.5) -> list[np.ndarray]:  # fmt: skip
    """A figure standing, then falling over `duration` s from `at` s: its hips drop to the
    floor (half a body height) and stay there."""
    out = []
    for f in range(int(seconds * FPS)):
        t = f / FPS
        s = float(np.clip((t - at) / duration, 0, 1))
        kp = figure((hip[0], hip[1] + 0.5 * height * s), height * (1 - 0.6 * s), 175.0)
        out.append(kp)
    return out


def events_of(
    tracks: dict[int, list[np.ndarray]], source: str = "cam0.mp4"
) -> list[dict[str, Any]]:
    """posekit.track/1 events of tracks {id: per-frame keypoints}, frame by frame."""
    frames = max(len(v) for v in tracks.values())
    out = []
    for f in range(frames):
        ids = [i for i, v in tracks.items() if f < len(v)]
        if ids:
            kp = np.stack([tracks[i][f] for i in ids])
            out += frame_events(results(f, kp, ids, source))
    return out


def noisy(
    track: list[np.ndarray], rng: np.random.Generator, *, sigma: float = 2.0, drop: float = 0.05
) -> list[np.ndarray]:
    """A copy of a track's keypoints with Gaussian noise of `sigma` px on every coordinate
    and a fraction `drop` of keypoints missed (confidence 0.05), as a detector gives them."""
    kp = np.stack(track).copy()
    kp[..., :2] += rng.normal(0, sigma, size=kp[..., :2].shape)
    kp[..., 2] = np.where(rng.random(kp.shape[:2]) < drop, 0.05, kp[..., 2])
    return list(kp)


def write_jsonl(path: Path, events: list[dict[str, Any]], extra_lines: Sequence[str] = ()) -> Path:
    """Write events (and any extra raw lines) as a JSON Lines file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(e, separators=(",", ":")) for e in events] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path
