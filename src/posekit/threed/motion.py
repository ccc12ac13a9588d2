"""Synthetic 3D people in motion, and what a camera sees of them: the training and test data
of 2D-to-3D lifting, made here with every answer known.

A person is a kinematic tree (pelvis, torso, head, two legs and two arms) built from a
standing template of 33 named points, scaled to a height of 1.50-1.95 m with each limb's
length varied by up to 5 %; bone lengths stay exactly constant over a clip. Joint angles
follow one of five motions, each within human joint limits (knee 0-150 degrees of flexion,
elbow 0-145, hip -30-120, no hyperextension): walking (a gait cycle with arm swing,
forward along its heading), squatting (knees and hips bend together, the feet stay on the
floor), falling (the body tips over its feet and lies), standing (small smooth sway), and
exercising on the spot (every joint on its own smooth course over most of its range: arms
overhead and out to the side, deep knee bends, the trunk leaning). Any schema whose keypoint
names are among the template's (COCO-17, OpenPose's COCO-18, BODY_25, BODY_25B) can be
generated.

`project` films a clip with a random pinhole camera (distance, height, focal length, roll)
and adds what a detector does: pixel noise that grows with the person's size, now and then a
gross error, and keypoints dropped altogether.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from posekit.schema import KeypointSchema
from posekit.threed.cameras import Camera
from posekit.utils.errors import UserError

MOTIONS = ("walk", "squat", "fall", "stand", "exercise")

#: the standing template (metres, the subject facing +y, its right along +x, z up, feet on
#: z = 0) and the body part that carries each point
_TEMPLATE: dict[str, tuple[tuple[float, float, float], str]] = {
    "mid_hip": ((0.0, 0.0, 0.95), "pelvis"),
    "left_hip": ((-0.10, 0.0, 0.95), "pelvis"),
    "right_hip": ((0.10, 0.0, 0.95), "pelvis"),
    "neck": ((0.0, 0.0, 1.50), "torso"),
    "left_shoulder": ((-0.19, 0.0, 1.45), "torso"),
    "right_shoulder": ((0.19, 0.0, 1.45), "torso"),
    "nose": ((0.0, 0.10, 1.62), "head"),
    "left_eye": ((-0.035, 0.085, 1.66), "head"),
    "right_eye": ((0.035, 0.085, 1.66), "head"),
    "left_ear": ((-0.075, 0.0, 1.64), "head"),
    "right_ear": ((0.075, 0.0, 1.64), "head"),
    "head_top": ((0.0, 0.0, 1.78), "head"),
    "left_elbow": ((-0.22, 0.0, 1.17), "left_upper_arm"),
    "right_elbow": ((0.22, 0.0, 1.17), "right_upper_arm"),
    "left_wrist": ((-0.24, 0.02, 0.92), "left_forearm"),
    "right_wrist": ((0.24, 0.02, 0.92), "right_forearm"),
    "left_knee": ((-0.10, 0.0, 0.52), "left_thigh"),
    "right_knee": ((0.10, 0.0, 0.52), "right_thigh"),
    "left_ankle": ((-0.10, 0.0, 0.09), "left_shank"),
    "right_ankle": ((0.10, 0.0, 0.09), "right_shank"),
    "left_heel": ((-0.10, -0.05, 0.03), "left_shank"),
    "right_heel": ((0.10, -0.05, 0.03), "right_shank"),
    "left_big_toe": ((-0.09, 0.17, 0.02), "left_shank"),
    "right_big_toe": ((0.09, 0.17, 0.02), "right_shank"),
    "left_small_toe": ((-0.14, 0.14, 0.02), "left_shank"),
    "right_small_toe": ((0.14, 0.14, 0.02), "right_shank"),
}
#: each moving part: its parent and the template point it turns about
_PARTS = {
    "pelvis": (None, "mid_hip"),
    "torso": ("pelvis", "mid_hip"),
    "head": ("torso", "neck"),
    "left_upper_arm": ("torso", "left_shoulder"),
    "right_upper_arm": ("torso", "right_shoulder"),
    "left_forearm": ("left_upper_arm", "left_elbow"),
    "right_forearm": ("right_upper_arm", "right_elbow"),
    "left_thigh": ("pelvis", "left_hip"),
    "right_thigh": ("pelvis", "right_hip"),
    "left_shank": ("left_thigh", "left_knee"),
    "right_shank": ("right_thigh", "right_knee"),
}
#: joint limits, degrees: (least, most) flexion (rotation about the body's x axis)
LIMITS = {
    "knee": (0.0, 150.0),
    "elbow": (0.0, 145.0),
    "hip": (-30.0, 120.0),
    "shoulder": (-60.0, 180.0),
    "torso": (-20.0, 90.0),
}


def _rotation(axis: int, degrees: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations about the x, y or z axis."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    out = np.zeros((len(a), 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out[:, axis, axis] = 1.0
    out[:, i, i], out[:, i, j], out[:, j, i], out[:, j, j] = c, -s, s, c
    return out


@dataclass
class Clip:
    """One person's motion: its 3D keypoints in the world (metres, z up) over time."""

    motion: str
    points: np.ndarray  # (T, K, 3)
    schema: KeypointSchema
    fps: float


def supports(schema: KeypointSchema) -> bool:
    """Whether every keypoint of `schema` is a point of the template."""
    return all(name in _TEMPLATE for name in schema.keypoints)


def generate_clip(
    schema: KeypointSchema,
    frames: int,
    rng: np.random.Generator,
    *,
    motion: str | None = None,
    fps: float = 30.0,
) -> Clip:
    """One clip of `frames` frames of a random person doing `motion` (default: any)."""
    if not supports(schema):
        missing = [n for n in schema.keypoints if n not in _TEMPLATE][:4]
        raise UserError(
            f"schema {schema.name}: no 3D template for {missing} (3D motion is "
            "generated for COCO-17, COCO-18, BODY_25 and BODY_25B names)"
        )
    motion = motion or str(rng.choice(MOTIONS))
    if motion not in MOTIONS:
        raise UserError(f"unknown motion {motion!r}: one of {', '.join(MOTIONS)}")
    t = np.arange(frames) / fps
    angles = _ANGLES[motion](t, rng)
    for name, (low, high) in LIMITS.items():
        for key in [k for k in angles if k.endswith(name)]:
            angles[key] = np.clip(angles[key], low, high)
    body = _template(rng)
    points = _pose(body, angles, frames)  # (T, P, 3) in the body frame, pelvis at its place
    if motion == "fall":
        points = _tip_over(points, t, rng)
    points[..., 2] -= points[..., 2].min(axis=1, keepdims=True)  # the lowest point on the floor
    heading = rng.uniform(0, 360)
    turn = _rotation(2, np.full(frames, heading))
    speed = rng.uniform(0.9, 1.5) if motion == "walk" else 0.0
    forward = np.stack([np.zeros(frames), speed * t, np.zeros(frames)], -1)
    start = np.append(rng.uniform(-1.0, 1.0, 2), 0.0)
    world = np.einsum("tij,tpj->tpi", turn, points + forward[:, None]) + start
    index = [list(_TEMPLATE).index(n) for n in schema.keypoints]
    return Clip(motion, world[:, index], schema, fps)


def _template(rng: np.random.Generator) -> np.ndarray:
    """(P, 3) the standing template scaled to a random height, each limb by up to 5 %."""
    base = np.array([p for p, _ in _TEMPLATE.values()])
    scaled = base * rng.uniform(1.50, 1.95) / 1.78
    parts = [part for _, part in _TEMPLATE.values()]
    for part in ("upper_arm", "forearm", "thigh", "shank"):
        for side in ("left", "right"):
            name = f"{side}_{part}"
            factor = rng.uniform(0.95, 1.05)
            _, pivot = _PARTS[name]
            at = scaled[list(_TEMPLATE).index(pivot)].copy()
            below = [i for i, p in enumerate(parts) if _descends(p, name)]
            scaled[below] = at + (scaled[below] - at) * factor
    return scaled


def _descends(part: str, ancestor: str) -> bool:
    while part is not None:
        if part == ancestor:
            return True
        part = _PARTS[part][0]  # type: ignore[assignment]
    return False


def _pose(template: np.ndarray, angles: dict[str, np.ndarray], frames: int) -> np.ndarray:
    """(T, P, 3) the template posed by per-part flexion angles (about x) and abductions
    (about y), each part turning about its pivot, children with their parents."""
    names = list(_TEMPLATE)
    parts = [part for _, part in _TEMPLATE.values()]
    zero = np.zeros(frames)
    local: dict[str, np.ndarray] = {}
    for part in _PARTS:
        flex = angles.get(_angle_key(part), zero)
        spread = angles.get(f"{_angle_key(part)}_spread", zero)
        sign = -1.0 if part in _BACKWARDS else 1.0
        local[part] = _rotation(0, sign * flex) @ _rotation(1, spread)
    out = np.repeat(template[None], frames, axis=0)
    # apply from the leaves up: each part's rotation moves it and everything below it
    for part in sorted(_PARTS, key=lambda p: -_depth(p)):
        pivot = out[:, names.index(_PARTS[part][1])][:, None]  # (T, 1, 3)
        moving = [i for i, p in enumerate(parts) if _descends(p, part)]
        out[:, moving] = np.einsum("tij,tpj->tpi", local[part], out[:, moving] - pivot) + pivot
    return out


def _depth(part: str) -> int:
    depth, parent = 0, _PARTS[part][0]
    while parent is not None:
        depth, parent = depth + 1, _PARTS[parent][0]
    return depth


def _angle_key(part: str) -> str:
    """The angle that turns a part: the joint at its top (`left_thigh` -> `left_hip`)."""
    joints = {"upper_arm": "shoulder", "forearm": "elbow", "thigh": "hip", "shank": "knee"}
    side, _, rest = part.partition("_")
    return f"{side}_{joints[rest]}" if side in ("left", "right") else part


#: flexion that bends a part the other way round the x axis (the torso forward, the knee back)
_BACKWARDS = {"torso", "left_shank", "right_shank"}


def _smooth_noise(t: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth random signal: a few sines of random frequency (0.1-1 Hz) and phase."""
    out = np.zeros_like(t)
    for _ in range(3):
        out += np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * t + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 3


def _walk(t: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    omega = 2 * np.pi * rng.uniform(0.8, 1.1)  # strides per second
    phase = omega * t + rng.uniform(0, 2 * np.pi)
    swing = rng.uniform(20, 30)
    angles = {"torso": 5 + _smooth_noise(t, rng, 2)}
    for side, shift in (("left", 0.0), ("right", np.pi)):
        p = phase + shift
        angles[f"{side}_hip"] = 10 + swing * np.sin(p)
        angles[f"{side}_knee"] = 5 + 55 * np.clip(np.sin(p - 1.2), 0, None)
        angles[f"{side}_shoulder"] = -swing * 0.8 * np.sin(p)
        angles[f"{side}_elbow"] = 15 + 15 * np.clip(-np.sin(p), 0, None)
        angles[f"{side}_shoulder_spread"] = np.full_like(t, 8.0 if side == "left" else -8.0)
    return angles


def _squat(t: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    period = rng.uniform(1.8, 3.0)
    depth = np.sin(np.pi * ((t / period + rng.uniform(0, 1)) % 1.0)) ** 2
    knee = 5 + rng.uniform(90, 130) * depth
    angles = {"torso": 10 + 35 * depth}
    for side in ("left", "right"):
        angles[f"{side}_knee"] = knee
        angles[f"{side}_hip"] = 0.9 * knee
        angles[f"{side}_shoulder"] = 70 * depth
        angles[f"{side}_elbow"] = 10 + _smooth_noise(t, rng, 5)
    return angles


def _stand(t: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    angles = {"torso": 3 + _smooth_noise(t, rng, 4)}
    for side in ("left", "right"):
        angles[f"{side}_knee"] = 5 + _smooth_noise(t, rng, 4)
        angles[f"{side}_hip"] = 3 + _smooth_noise(t, rng, 4)
        angles[f"{side}_shoulder"] = 10 + _smooth_noise(t, rng, 20)
        angles[f"{side}_elbow"] = 30 + _smooth_noise(t, rng, 25)
        angles[f"{side}_shoulder_spread"] = _smooth_noise(t, rng, 15)
    return angles


def _fall(t: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    angles = _stand(t, rng)
    for side in ("left", "right"):
        angles[f"{side}_shoulder"] = angles[f"{side}_shoulder"] + 40 * (t > t[len(t) // 3])
    return angles


def _exercise(t: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Exercising on the spot: every joint on its own smooth random course over most of its
    range (arms raised overhead and out to the side, elbows and knees bending, the trunk
    leaning), clipped to the joint limits."""
    angles = {"torso": 15 + _smooth_noise(t, rng, 30)}
    for side, outward in (("left", 1.0), ("right", -1.0)):
        knee = np.abs(_smooth_noise(t, rng, 130))
        angles[f"{side}_knee"] = knee
        angles[f"{side}_hip"] = 0.6 * knee + _smooth_noise(t, rng, 30)
        angles[f"{side}_shoulder"] = 60 + _smooth_noise(t, rng, 180)
        angles[f"{side}_shoulder_spread"] = outward * np.abs(_smooth_noise(t, rng, 120))
        angles[f"{side}_elbow"] = np.abs(_smooth_noise(t, rng, 200))
    return angles


_ANGLES = {"walk": _walk, "squat": _squat, "stand": _stand, "fall": _fall, "exercise": _exercise}


def _tip_over(points: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The whole body tips forward or sideways about its feet from a random moment, over
    0.5-1 s, to lying (85 degrees)."""
    start = rng.uniform(0.2, 0.5) * t[-1]
    duration = rng.uniform(0.5, 1.0)
    s = np.clip((t - start) / duration, 0, 1)
    tilt = 85 * (3 * s**2 - 2 * s**3)  # eased
    axis = int(rng.integers(0, 2))  # forward (about x) or sideways (about y)
    sign = float(rng.choice([-1.0, 1.0]))
    feet = points[:, :, 2].argmin(1)
    pivot = points[np.arange(len(t)), feet][:, None]
    turn = _rotation(axis, sign * tilt)
    return np.einsum("tij,tpj->tpi", turn, points - pivot) + pivot


@dataclass
class Filmed:
    """A clip seen by one camera: the camera, the keypoints in its frame (metres), their
    exact pixels, and the pixels a detector would report (x, y, confidence; NaN: dropped)."""

    camera: Camera
    points: np.ndarray  # (T, K, 3) in the camera's frame
    pixels: np.ndarray  # (T, K, 2) exact (OpenCV's pixel convention)
    detected: np.ndarray  # (T, K, 3) noisy x, y and a confidence; NaN x, y: dropped


def film(
    clip: Clip,
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = (1000, 1000),
    noise: tuple[float, float] = (0.005, 0.02),
    gross: float = 0.02,
    dropped: float = 0.05,
) -> Filmed:
    """`clip` seen by a random pinhole camera 3-8 m away, 0.5-2.5 m up, rolled up to 10
    degrees, looking at the person give or take 0.3 m, with a focal length that frames them
    at 25-75 % of the image height. The detector's error per keypoint is Gaussian with a
    standard deviation of `noise` (a range, drawn per clip) times the person's pixel height;
    a `gross` fraction is off by 10-30 % of that height, and a `dropped` fraction missing."""
    centre = clip.points.reshape(-1, 3).mean(0)
    yaw = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(3.0, 8.0)
    position = centre + [distance * np.cos(yaw), distance * np.sin(yaw), 0.0]
    position[2] = rng.uniform(0.5, 2.5)
    target = centre + rng.uniform(-0.3, 0.3, 3)
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = _rotation(2, np.array([rng.uniform(-10, 10)]))[0] @ np.stack([right, down, forward])
    height = float(np.ptp(clip.points[..., 2])) or 1.7
    focal = rng.uniform(0.25, 0.75) * size[1] * distance / max(height, 0.5)
    matrix = np.array([[focal, 0, size[0] / 2 - 0.5], [0, focal, size[1] / 2 - 0.5], [0, 0, 1]])
    camera = Camera(
        "synthetic", size, matrix, np.zeros(5), _rodrigues(rotation), -rotation @ position
    )
    in_camera = clip.points @ rotation.T + camera.translation
    pixels = camera.project(clip.points)
    person = np.ptp(pixels[..., 1], axis=1, keepdims=True)[..., None]  # (T, 1, 1) px tall
    detected = pixels + rng.normal(0, 1, pixels.shape) * rng.uniform(*noise) * person
    wrong = rng.random(pixels.shape[:2]) < gross
    direction = rng.normal(size=(*pixels.shape[:2], 2))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    detected[wrong] += (direction * rng.uniform(0.1, 0.3, (*pixels.shape[:2], 1)) * person)[wrong]
    confidence = np.clip(rng.normal(0.85, 0.08, pixels.shape[:2]), 0.05, 1.0)
    confidence[wrong] *= 0.5
    missing = rng.random(pixels.shape[:2]) < dropped
    detected[missing] = np.nan
    confidence[missing] = 0.0
    return Filmed(camera, in_camera, pixels, np.concatenate([detected, confidence[..., None]], -1))


def _rodrigues(rotation: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(rotation)[0].ravel()
