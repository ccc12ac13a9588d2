"""Articulated synthetic figures: COCO-17 people and six-point robot arms.

Each sampler returns a `Figure`: keypoints in image coordinates, the shapes that draw it (every
keypoint sits inside the shape of its joint), the palette and which labels get textures.
People face the camera or turn away (then nose and eyes are not labelled, as in COCO), are
squeezed sideways to mimic turning, lean, and take random limb angles from a few pose families.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from posekit.data.synth.render import Shape, segment

# Part labels of a person.
SKIN, SHIRT, PANTS, SHOES, HAIR, DARK = 1, 2, 3, 4, 5, 6
# Part labels of an arm.
METAL, JOINT, ACCENT, FINGER = 1, 2, 3, 4

# Limb angle ranges in degrees per pose family: (arm outward, elbow, leg outward, knee).
_POSES = {
    "stand": ((5, 35), (-25, 25), (0, 15), (-8, 8)),
    "walk": ((-30, 30), (-40, 40), (-25, 30), (-30, 30)),
    "arms_up": ((100, 175), (-60, 60), (0, 20), (-10, 10)),
    "free": ((-30, 175), (-140, 140), (-15, 60), (-90, 90)),
    "crouch": ((0, 90), (-120, 120), (30, 80), (-150, -70)),
}
_POSE_NAMES = tuple(_POSES)
_POSE_P = (0.25, 0.25, 0.1, 0.3, 0.1)


@dataclass(frozen=True)
class LegPose:
    """Both legs set by hand instead of drawn: each segment's direction in degrees from
    straight down, positive towards image right, before the body's tilt; (person's left leg,
    right leg). Action clips (`posekit.track.synth_actions`) bend the knees with it."""

    thigh: tuple[float, float]
    shin: tuple[float, float]


@dataclass
class Figure:
    """A figure ready to draw: (K, 2) keypoints, (K,) labelled-by-construction flags, shapes
    in drawing order, (L, 3) uint8 palette, and labels that get a texture."""

    keypoints: np.ndarray
    labelled: np.ndarray
    shapes: list[Shape]
    palette: np.ndarray
    textured: tuple[int, ...]
    scale: float


def _dir(angle_deg: np.ndarray | float) -> np.ndarray:
    """Unit vector for an angle measured from straight down, positive towards image right."""
    a = np.deg2rad(angle_deg)
    return np.array([np.sin(a), np.cos(a)])


def _color(
    rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]
) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0]


def _person_palette(rng: np.random.Generator) -> np.ndarray:
    skin_tones = np.array(
        [
            [60, 90, 140],
            [80, 120, 180],
            [110, 150, 210],
            [140, 180, 230],
            [40, 60, 95],
            [90, 140, 200],
        ],
        dtype=np.float64,
    )
    skin = skin_tones[rng.integers(len(skin_tones))] * rng.uniform(0.85, 1.1)
    hair = np.array([[20, 20, 25], [30, 50, 90], [60, 120, 170], [200, 200, 200]])[
        rng.choice(4, p=(0.5, 0.3, 0.15, 0.05))
    ]
    return np.clip(
        np.stack(
            [
                [0, 0, 0],
                skin,
                _color(rng, (0.2, 1), (0.3, 1)),
                _color(rng, (0.1, 0.8), (0.15, 0.7)),
                _color(rng, (0, 0.4), (0.05, 0.4)),
                hair,
                [25, 25, 35],
            ]
        ),
        0,
        255,
    ).astype(np.uint8)


def sample_person(
    rng: np.random.Generator,
    height: float,
    pelvis: np.ndarray,
    *,
    legs: LegPose | None = None,
    tilt: float | None = None,
) -> Figure:
    """A COCO-17 person about `height` px tall with the pelvis at `pelvis` (x, y).

    `legs` and `tilt` (degrees, clockwise on screen) replace the drawn leg angles and lean;
    the same `rng` gives the same person (clothes, face, arms) whatever they are, so a clip
    can move one person's legs frame by frame."""
    front = rng.random() < 0.6
    f = 1.0 if front else -1.0  # image-x sign of the person's left side
    cw = rng.uniform(0.45, 1.0)  # sideways squeeze: the body turned away from the camera
    yaw = np.sqrt(1 - cw**2) * rng.choice((-1.0, 1.0))
    pose = _POSES[_POSE_NAMES[rng.choice(len(_POSE_NAMES), p=_POSE_P)]]
    arm_out, elbow, leg_out, knee = (rng.uniform(*r, size=2) for r in pose)

    neck = np.array([rng.uniform(-0.03, 0.03), -0.30])
    head = neck + [rng.uniform(-0.015, 0.015), -0.095]
    sh = {s: neck + [s * f * 0.12 * cw, 0.025] for s in (1, -1)}  # s = +1 person's left
    hip = {s: np.array([s * f * 0.085 * cw, 0.0]) for s in (1, -1)}
    kp = np.zeros((17, 2))
    kp[0] = head + [yaw * 0.035, 0.012]
    for s, (eye, ear) in {1: (1, 3), -1: (2, 4)}.items():
        kp[eye] = head + [s * f * 0.024 * cw + yaw * 0.028, -0.012]
        kp[ear] = head + [s * f * 0.056 * max(cw, 0.6) + yaw * 0.01, 0.0]
    for i, s in enumerate((1, -1)):
        side = s * f  # image side of this limb
        a1 = side * arm_out[i]
        elb = sh[s] + 0.165 * _dir(a1)
        wri = elb + 0.145 * _dir(a1 + side * elbow[i])
        l1 = side * leg_out[i]
        thigh, shin = (l1, l1 + side * knee[i]) if legs is None else (legs.thigh[i], legs.shin[i])
        kne = hip[s] + 0.245 * _dir(thigh)
        ank = kne + 0.235 * _dir(shin)
        o = 0 if s == 1 else 1
        kp[5 + o], kp[7 + o], kp[9 + o] = sh[s], elb, wri
        kp[11 + o], kp[13 + o], kp[15 + o] = hip[s], kne, ank

    lean = np.deg2rad(rng.normal(0, 10) if rng.random() > 0.05 else rng.uniform(-90, 90))
    tilt = lean if tilt is None else np.deg2rad(tilt)
    rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])

    def to_image(p: np.ndarray) -> np.ndarray:
        return (p @ rot.T) * height + pelvis

    kpi = to_image(kp)
    neck_i, head_i = to_image(neck), to_image(head)
    u = height  # px per body unit
    long_sleeves = rng.random() < 0.5
    shapes: list[Shape] = []
    for o in (0, 1):  # legs: thigh, shin, shoe
        hp, kn, an = kpi[11 + o], kpi[13 + o], kpi[15 + o]
        shapes += segment(PANTS, hp, kn, 0.075 * u, 0.06 * u)
        shapes += segment(PANTS, kn, an, 0.06 * u, 0.045 * u)
        d = (an - kn) / (np.hypot(*(an - kn)) or 1)
        foot = an + d * 0.02 * u
        ang = float(np.degrees(np.arctan2(d[1], d[0])))
        shapes.append(Shape(SHOES, ellipse=((foot[0], foot[1]), (0.042 * u, 0.024 * u), ang)))
    shapes += segment(PANTS, kpi[11], kpi[12], 0.09 * u, 0.09 * u)
    grow = lambda p, q, k: p + (p - q) * k  # noqa: E731  (push a corner outwards)
    torso = np.stack(
        [
            grow(kpi[5], kpi[6], 0.2),
            grow(kpi[6], kpi[5], 0.2),
            grow(kpi[12], kpi[11], 0.25),
            grow(kpi[11], kpi[12], 0.25),
        ]
    )
    shapes.append(Shape(SHIRT, polygon=torso))
    shapes += segment(SKIN, neck_i, head_i, 0.045 * u, 0.045 * u)
    for o in (0, 1):  # arms: upper arm, forearm, hand
        s_, e_, w_ = kpi[5 + o], kpi[7 + o], kpi[9 + o]
        shapes += segment(SHIRT, s_, e_, 0.055 * u, 0.045 * u)
        shapes += segment(SHIRT if long_sleeves else SKIN, e_, w_, 0.045 * u, 0.035 * u)
        d = (w_ - e_) / (np.hypot(*(w_ - e_)) or 1)
        hand = w_ + d * 0.03 * u
        shapes.append(Shape(SKIN, ellipse=((hand[0], hand[1]), (0.026 * u, 0.026 * u), 0.0)))
    ang = float(np.degrees(tilt))
    hx, hy = 0.055 * max(cw, 0.75) * u, 0.068 * u
    if front:
        up = to_image(head + [0, -0.018])
        shapes.append(Shape(HAIR, ellipse=((up[0], up[1]), (hx * 1.05, hy * 0.95), ang)))
        dn = to_image(head + [yaw * 0.012, 0.008])
        shapes.append(Shape(SKIN, ellipse=((dn[0], dn[1]), (hx * 0.92, hy * 0.9), ang)))
        r = max(0.009 * u, 0.6)
        for eye in (1, 2):
            shapes.append(Shape(DARK, ellipse=((kpi[eye][0], kpi[eye][1]), (r, r * 0.8), ang)))
        mouth = to_image(head + [yaw * 0.03, 0.04])
        shapes.append(Shape(DARK, ellipse=((mouth[0], mouth[1]), (2 * r, r * 0.6), ang)))
        shapes.append(Shape(DARK, ellipse=((kpi[0][0], kpi[0][1]), (r * 0.6, r * 0.6), ang)))
    else:
        shapes.append(Shape(HAIR, ellipse=((head_i[0], head_i[1]), (hx, hy), ang)))
    for ear in (3, 4):  # ears stick out a little on both views
        shapes.append(
            Shape(SKIN, ellipse=((kpi[ear][0], kpi[ear][1]), (0.014 * u, 0.022 * u), ang))
        )
    labelled = np.ones(17, dtype=bool)
    if not front:  # turned away: the face is not visible, so it is not annotated (as in COCO)
        labelled[:3] = False
    return Figure(kpi, labelled, shapes, _person_palette(rng), (SHIRT, PANTS), u)


def sample_arm(rng: np.random.Generator, size: float, base: np.ndarray) -> Figure:
    """A robot arm about `size` px tall standing on `base`: base, shoulder, elbow, wrist and
    the two gripper finger tips (left = counter-clockwise of the gripper direction on screen)."""
    up = -90.0 + rng.normal(0, 8)  # column direction (screen angle, degrees)
    a1 = up + rng.uniform(-70, 70)
    a2 = a1 + rng.uniform(-140, 140)
    a3 = a2 + rng.uniform(-100, 100)
    lens = np.array([0.28, 0.38, 0.3, 0.12]) * size * rng.uniform(0.85, 1.15, 4)

    def step(p: np.ndarray, ang: float, length: float) -> np.ndarray:
        r = np.deg2rad(ang)
        return p + length * np.array([np.cos(r), np.sin(r)])

    shoulder = step(base, up, lens[0])
    elbow = step(shoulder, a1, lens[1])
    wrist = step(elbow, a2, lens[2])
    opening = rng.uniform(12, 40)
    tip_l = step(wrist, a3 - opening, lens[3])  # y points down: -angle is counter-clockwise
    tip_r = step(wrist, a3 + opening, lens[3])
    kp = np.stack([base, shoulder, elbow, wrist, tip_l, tip_r])
    w = size * rng.uniform(0.07, 0.11)
    shapes = [
        Shape(
            METAL,
            polygon=np.array(
                [
                    base + [-1.6 * w, 0.2 * w],
                    base + [1.6 * w, 0.2 * w],
                    base + [0.9 * w, -0.9 * w],
                    base + [-0.9 * w, -0.9 * w],
                ]
            ),
        )
    ]
    shapes += segment(METAL, base, shoulder, 1.1 * w, 1.0 * w)
    shapes += segment(ACCENT, shoulder, elbow, 1.0 * w, 0.85 * w)
    shapes += segment(ACCENT, elbow, wrist, 0.8 * w, 0.65 * w)
    for tip in (tip_l, tip_r):
        shapes += segment(FINGER, wrist, tip, 0.35 * w, 0.22 * w)
    for p, r in ((shoulder, 0.62), (elbow, 0.55), (wrist, 0.45)):
        shapes.append(Shape(JOINT, ellipse=((p[0], p[1]), (r * w, r * w), 0.0)))
    shapes.append(Shape(JOINT, ellipse=((base[0], base[1]), (0.35 * w, 0.35 * w), 0.0)))
    grey = rng.uniform(110, 200)
    palette = np.clip(
        np.stack(
            [
                [0, 0, 0],
                [grey, grey, grey * rng.uniform(0.9, 1.1)],
                [40, 40, 45],
                _color(rng, (0.6, 1), (0.6, 1)),
                [70, 70, 80],
            ]
        ),
        0,
        255,
    ).astype(np.uint8)
    return Figure(kp, np.ones(6, dtype=bool), shapes, palette, (METAL,), size)
