"""Synthetic tracking sequences: people walking across a scene, crossing and occluding each other,
with ground-truth identities, boxes and keypoints per frame.

Built on the synthetic image generator: each person keeps one appearance and pose (drawn from a
per-person seed) and walks at a constant speed with a slight bob; nearer (taller) people are
drawn over farther ones, so crossings produce real occlusions and visibility flags. Some people
enter after the start and all leave through the sides, so ids must appear and end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from posekit.data.synth.background import Backdrop
from posekit.data.synth.figures import sample_person
from posekit.data.synth.generator import SynthInstance, annotate, draw_figures
from posekit.ops.instances import Instances


@dataclass(frozen=True)
class SynthVideoConfig:
    """A sequence of `frames` frames at `fps` with `people` walkers."""

    people: int = 4
    frames: int = 150
    width: int = 640
    height: int = 480
    fps: float = 30.0
    seed: int = 0
    min_height: float = 140.0  # px, the farthest walker
    max_height: float = 320.0  # px, the nearest walker
    speed: tuple[float, float] = (50.0, 140.0)  # px/s


@dataclass
class FrameTruth:
    """Ground truth of one frame at `timestamp` seconds: each person's id (N,) and the
    people as `Instances` (boxes xyxy of the visible pixels, keypoints (N, 17, 3) x, y, v with
    COCO visibility)."""

    index: int
    timestamp: float
    ids: np.ndarray
    instances: Instances


@dataclass(frozen=True)
class _Walker:
    id: int
    height: float
    y: float  # pelvis height in the image
    x0: float  # pelvis x at `start`
    vx: float  # px/s
    start: int  # first frame
    phase: float


def _walkers(cfg: SynthVideoConfig) -> list[_Walker]:
    rng = np.random.default_rng([cfg.seed, 0x7AC])
    out = []
    for i in range(cfg.people):
        h = float(np.exp(rng.uniform(np.log(cfg.min_height), np.log(cfg.max_height))))
        # nearer people stand lower in the frame (ground plane), all share the floor band
        depth = (h - cfg.min_height) / max(cfg.max_height - cfg.min_height, 1e-6)
        y = cfg.height * (0.45 + 0.25 * depth) + rng.uniform(-0.03, 0.03) * cfg.height
        y = min(y, cfg.height - 0.3 * h)
        leftwards = i % 2 == 1  # alternate directions: paths cross
        speed = rng.uniform(*cfg.speed)
        start = 0 if i < max(2, cfg.people // 2) else int(rng.uniform(0.1, 0.5) * cfg.frames)
        if start == 0:  # already in view, somewhere along its path
            x0 = rng.uniform(0.1, 0.9) * cfg.width
        else:  # walks in from the side
            x0 = cfg.width + 0.2 * h if leftwards else -0.2 * h
        out.append(
            _Walker(
                i + 1, h, y, x0, -speed if leftwards else speed, start, rng.uniform(0, 2 * np.pi)
            )
        )
    return out


def synth_video(cfg: SynthVideoConfig) -> Iterator[tuple[np.ndarray, FrameTruth]]:
    """(BGR frame, truth) for every frame, rendered lazily."""
    backdrop = Backdrop(cfg.width, cfg.height, cfg.seed)
    background = backdrop.background(np.random.default_rng([cfg.seed, 0xB6]))
    walkers = _walkers(cfg)
    for f in range(cfg.frames):
        t = f / cfg.fps
        img = background.copy()
        owner = np.zeros((cfg.height, cfg.width), np.uint8)
        figures = []
        for w in sorted(walkers, key=lambda w: w.height):  # far first: near ones occlude them
            if f < w.start:
                continue
            dt = (f - w.start) / cfg.fps
            pelvis = np.array(
                [w.x0 + w.vx * dt, w.y + 0.015 * w.height * np.sin(w.phase + 2 * np.pi * 1.8 * dt)]
            )
            # the same seed every frame: the same person (clothes, pose), only moved
            fig = sample_person(np.random.default_rng([cfg.seed, 0xF16, w.id]), w.height, pelvis)
            figures.append((w.id, fig))
        placed = draw_figures(
            img, owner, figures, lambda i: np.random.default_rng([cfg.seed, 0x7E8, i])
        )
        instances = annotate(placed, owner, box_area=False)
        # one camera for the whole clip: exposure, blur and sensor noise do not flicker
        img = backdrop.camera(img, np.random.default_rng([cfg.seed, 0xCA]))
        yield img, frame_truth(f, t, instances)


def frame_truth(index: int, timestamp: float, instances: list[SynthInstance]) -> FrameTruth:
    """The truth of a frame from the generator's instances (boxes made xyxy)."""
    ids = np.array([i.figure_id for i in instances], np.int64)
    boxes = np.array([[*i.bbox[:2], *(i.bbox[:2] + i.bbox[2:])] for i in instances])
    kps = np.array([i.keypoints for i in instances])
    people = Instances(
        boxes=boxes.reshape(-1, 4),
        keypoints=kps.reshape(-1, 17, 3),
        classes=np.zeros(len(ids), np.int64),
    )
    return FrameTruth(index, timestamp, ids, people)


def write_synth_video(cfg: SynthVideoConfig, out_dir: str | Path) -> tuple[Path, Path]:
    """Render to `out_dir/video.mp4` and the truth to `out_dir/truth.json` (one entry per
    frame: index, timestamp, ids, boxes, keypoints)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    video = out / "video.mp4"
    writer = cv2.VideoWriter(
        str(video), cv2.VideoWriter.fourcc(*"mp4v"), cfg.fps, (cfg.width, cfg.height)
    )
    frames = []
    for img, truth in synth_video(cfg):
        writer.write(img)
        frames.append(
            {
                "index": truth.index,
                "timestamp": truth.timestamp,
                "ids": truth.ids.tolist(),
                "boxes": np.round(truth.instances.boxes, 2).tolist(),
                "keypoints": np.round(truth.instances.keypoints, 2).tolist(),
            }
        )
    writer.release()
    truth_path = out / "truth.json"
    truth_path.write_text(json.dumps({"config": asdict(cfg), "frames": frames}))
    return video, truth_path


def load_truth(path: str | Path) -> list[FrameTruth]:
    data = json.loads(Path(path).read_text())
    return [
        FrameTruth(
            f["index"],
            f["timestamp"],
            np.array(f["ids"], np.int64),
            Instances(
                boxes=np.array(f["boxes"], np.float64).reshape(-1, 4),
                keypoints=np.array(f["keypoints"], np.float64).reshape(-1, 17, 3),
                classes=np.zeros(len(f["ids"]), np.int64),
            ),
        )
        for f in data["frames"]
    ]
