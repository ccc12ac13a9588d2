"""Rendered action clips with known actions: one person who squats a known number of times,
falls at a known time, sits down slowly or walks across, drawn by the synthetic image
generator (`posekit.data.synth`) over a backdrop, with ground truth per frame.

Unlike `posekit.track.synth_motion` (keypoints only, for the rule tests), these are pixels:
`benchmarks/actions_video.py` trains a model on frames of such clips (`write_action_dataset`),
runs `posekit track` on held-out clips (other people, other backdrops) and scores
`posekit actions` on what the model saw against `action_times`.

The body is posed by hand (`figures.LegPose`, a tilt): in a squat the feet stay on the floor,
the shins stay vertical and the thighs turn forward, so the knee angle seen in the image is
`180 - thigh angle`, from 175 down to 85 degrees and back; a fall tips the body over about
the pelvis while the pelvis drops to the floor in `duration` seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from posekit.data.synth.background import Backdrop
from posekit.data.synth.figures import LegPose, sample_person
from posekit.data.synth.generator import SynthInstance, annotate, draw_figures
from posekit.track.synth_video import FrameTruth, frame_truth
from posekit.utils.errors import UserError

ACTIONS = ("squat", "fall", "sit", "walk")
#: knee angles of a squat: standing and at the bottom (degrees)
STAND_KNEE, BOTTOM_KNEE = 175.0, 85.0
THIGH, SHIN = 0.245, 0.235  # segment lengths in body heights (as `sample_person`)


@dataclass(frozen=True)
class ActionClipConfig:
    """One person doing `action` for `seconds`: squats `count` times, one every `period`
    seconds from `start`; falls (or, slowly, sits down) at `start` taking `duration`
    seconds; or walks across. `facing` +1 turns the knees (and the fall) towards image
    right, -1 left."""

    action: str = "squat"
    seconds: float = 12.0
    fps: float = 30.0
    width: int = 640
    height: int = 480
    seed: int = 0
    person_height: float = 300.0  # px, standing
    x: float = 0.5  # where the feet stand (walk: start), as a fraction of the width
    count: int = 3
    start: float = 1.0
    period: float = 2.0
    duration: float = 0.5
    facing: int = 1

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise UserError(f"action clip: {self.action!r} is not one of {', '.join(ACTIONS)}")
        if self.facing not in (-1, 1):
            raise UserError("action clip: facing must be 1 or -1")

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)

    @property
    def floor(self) -> float:
        """Image row of the feet."""
        return min(self.height - 8.0, self.height * 0.5 + 0.48 * self.person_height)


@dataclass(frozen=True)
class Pose:
    """The body at one instant: pelvis (x, y) px, legs, tilt (degrees clockwise) and the true
    knee angle (degrees) the rules should see."""

    pelvis: np.ndarray
    legs: LegPose
    tilt: float
    knee_angle: float


def _smoothstep(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return s * s * (3 - 2 * s)


def _standing(cfg: ActionClipConfig, x: float, thigh: tuple[float, float],
              shin: tuple[float, float]) -> np.ndarray:  # fmt: skip
    """Pelvis that puts the lower foot on the floor, legs as given."""
    h = cfg.person_height
    reach = max(THIGH * np.cos(np.radians(a)) + SHIN * np.cos(np.radians(b))
                for a, b in zip(thigh, shin, strict=True))  # fmt: skip
    return np.array([x, cfg.floor - h * reach])


def pose_at(cfg: ActionClipConfig, t: float) -> Pose:
    """Where the body is at `t` seconds."""
    h, d = cfg.person_height, cfg.facing
    x = cfg.x * cfg.width
    if cfg.action == "squat":
        k = (t - cfg.start) / cfg.period
        bent = 0.0 if k < 0 or k >= cfg.count else float(np.sin(np.pi * (k % 1.0)) ** 2)
        knee = STAND_KNEE - (STAND_KNEE - BOTTOM_KNEE) * bent
        theta = d * (180.0 - knee)  # thighs turn forward, shins stay vertical
        pelvis = _standing(cfg, x, (theta, theta), (0.0, 0.0))
        pelvis[0] -= h * THIGH * np.sin(np.radians(theta))  # the feet stay where they are
        return Pose(pelvis, LegPose((theta, theta), (0.0, 0.0)), 0.0, knee)
    if cfg.action in ("fall", "sit"):
        s = _smoothstep((t - cfg.start) / cfg.duration)
        legs = LegPose((-3.0, 3.0), (0.0, 0.0))
        up = _standing(cfg, x, legs.thigh, legs.shin)
        down = np.array([x, cfg.floor - 0.07 * h])  # lying, the pelvis just above the floor
        return Pose(up + (down - up) * s, legs, d * 85.0 * s, STAND_KNEE)
    # walk: the legs swing in opposite phase, 1.6 strides a second
    v = d * 0.7 * cfg.width / cfg.seconds
    start = cfg.x * cfg.width - (0.35 * cfg.width * d)
    swing = 22.0 * np.sin(2 * np.pi * 1.6 * t)
    thigh = (d * swing, -d * swing)
    shin = (thigh[0] - d * 12.0 * max(0.0, -np.sin(2 * np.pi * 1.6 * t)),
            thigh[1] - d * 12.0 * max(0.0, np.sin(2 * np.pi * 1.6 * t)))  # fmt: skip
    knee = 180.0 - abs(thigh[0] - shin[0])
    return Pose(_standing(cfg, start + v * t, thigh, shin), LegPose(thigh, shin), 0.0, knee)


def action_times(cfg: ActionClipConfig) -> list[float]:
    """When each true action ends (s): every squat's return to standing, or the fall's start;
    sitting down slowly and walking are no actions."""
    if cfg.action == "squat":
        return [cfg.start + (m + 1) * cfg.period for m in range(cfg.count)]
    return [cfg.start] if cfg.action == "fall" else []


def render_pose(
    cfg: ActionClipConfig, pose: Pose, backdrop: Backdrop, background: np.ndarray
) -> tuple[np.ndarray, list[SynthInstance]]:
    """One BGR frame of the clip's person (the same clothes every frame) in `pose`, and the
    person's instance (none when nothing of them is seen)."""
    img = background.copy()
    owner = np.zeros((cfg.height, cfg.width), np.uint8)
    fig = sample_person(np.random.default_rng([cfg.seed, 0xF16]), cfg.person_height,
                        pose.pelvis, legs=pose.legs, tilt=pose.tilt)  # fmt: skip
    placed = draw_figures(img, owner, [(1, fig)], lambda i: np.random.default_rng([cfg.seed, i]))
    instances = annotate(placed, owner, box_area=False)
    return backdrop.camera(img, np.random.default_rng([cfg.seed, 0xCA])), instances


def action_clip(cfg: ActionClipConfig) -> Iterator[tuple[np.ndarray, FrameTruth]]:
    """(BGR frame, truth) for every frame of the clip, rendered lazily."""
    backdrop = Backdrop(cfg.width, cfg.height, cfg.seed)
    background = backdrop.background(np.random.default_rng([cfg.seed, 0xB6]))
    for f in range(cfg.frames):
        img, instances = render_pose(cfg, pose_at(cfg, f / cfg.fps), backdrop, background)
        yield img, frame_truth(f, f / cfg.fps, instances)


def write_action_clip(cfg: ActionClipConfig, path: str | Path) -> tuple[Path, list[FrameTruth]]:
    """Render the clip to an mp4 file; the truth of every frame."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), cfg.fps,
                             (cfg.width, cfg.height))  # fmt: skip
    truths = []
    try:
        for img, truth in action_clip(cfg):
            writer.write(img)
            truths.append(truth)
    finally:
        writer.release()
    return out, truths


def random_clip(rng: np.random.Generator, seed: int, **fixed: object) -> ActionClipConfig:
    """A clip with every choice drawn from `rng`: action, person size and place, timing,
    direction; `fixed` fields are kept."""
    cfg = ActionClipConfig(
        action=str(rng.choice(ACTIONS)),
        seed=seed,
        person_height=float(rng.uniform(220, 330)),
        x=float(rng.uniform(0.35, 0.65)),
        count=int(rng.integers(2, 5)),
        start=float(rng.uniform(0.5, 2.0)),
        period=float(rng.uniform(1.5, 2.5)),
        facing=int(rng.choice((-1, 1))),
    )
    fast, slow = float(rng.uniform(0.3, 0.7)), float(rng.uniform(3.0, 5.0))  # fall, sit
    cfg = replace(cfg, **fixed)  # type: ignore[arg-type]
    return (
        cfg
        if "duration" in fixed
        else replace(cfg, duration=fast if cfg.action == "fall" else slow)
    )


def write_action_dataset(out_dir: str | Path, images: int, *, seed: int = 0,
                         val: float = 0.1) -> Path:  # fmt: skip
    """A posekit dataset (COCO-17, one person per image) of single frames of random clips,
    each at a random instant: squats at every depth, falls half-way, people lying and walking.
    Image i depends only on (seed, i)."""
    from posekit.data.dataset import Annotation, Category, ImageInfo, KeypointDataset
    from posekit.data.layout import write_posekit
    from posekit.data.split import split_dataset
    from posekit.schema import get_schema
    from posekit.utils.outputs import claim_output

    out = claim_output(out_dir, "action frames", source=f"synthetic action frames, seed {seed}")
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    infos, anns = [], []
    for i in range(images):
        rng = np.random.default_rng([seed, 0xAC7, i])
        cfg = random_clip(rng, seed=int(rng.integers(2**31)))
        backdrop = Backdrop(cfg.width, cfg.height, cfg.seed)
        background = backdrop.background(np.random.default_rng([cfg.seed, 0xB6]))
        t = float(rng.uniform(0, cfg.seconds))
        img, instances = render_pose(cfg, pose_at(cfg, t), backdrop, background)
        name = f"{i:06d}.jpg"
        if not cv2.imwrite(str(image_dir / name), img, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise OSError(f"could not write {image_dir / name}")
        infos.append(ImageInfo(i + 1, name, cfg.width, cfg.height))
        for inst in instances:
            anns.append(Annotation(len(anns) + 1, i + 1, 1, inst.keypoints, inst.bbox, inst.area))
    schema = get_schema("coco17")
    ds = KeypointDataset(infos, anns, [Category(1, schema.name, schema)], image_dir,
                         f"posekit action frames seed={seed}")  # fmt: skip
    write_posekit(split_dataset(ds, val=val, seed=seed) if val else {"train": ds}, out)
    return out
