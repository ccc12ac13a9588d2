"""Built-in keypoint schemas (pure data): COCO-17 person, 21-point hand, iBUG 68-point face, arm,
and the OpenPose output layouts COCO-18, BODY_25 and BODY_25B."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from posekit.schema.schema import KeypointSchema, SchemaError
from posekit.utils.yaml_files import read_yaml

COCO17_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
#: The published COCO keypoint sigmas, computed as pycocotools does (`array([.26, ...]) / 10`)
#: so that OKS values are bit-identical to the reference implementation.
COCO17_SIGMAS = tuple(
    (np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72,
               .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10.0).tolist()
)  # fmt: skip
#: COCO's 1-based skeleton from person_keypoints_*.json, kept verbatim.
COCO17_SKELETON_1BASED = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip

_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
_THUMB_JOINTS = ("cmc", "mcp", "ip", "tip")
_FINGER_JOINTS = ("mcp", "pip", "dip", "tip")
HAND21_KEYPOINTS = ("wrist",) + tuple(
    f"{f}_{j}" for f in _FINGERS for j in (_THUMB_JOINTS if f == "thumb" else _FINGER_JOINTS)
)
#: COCO-WholeBody hand sigmas, as MMPose ships them for its 21-point hand datasets.
HAND21_SIGMAS = (
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024,
    0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031,
)  # fmt: skip
HAND21_SKELETON = tuple(
    edge
    for f in range(5)
    for edge in (
        (0, 1 + 4 * f),
        (1 + 4 * f, 2 + 4 * f),
        (2 + 4 * f, 3 + 4 * f),
        (3 + 4 * f, 4 + 4 * f),
    )
)


def _face68() -> tuple[tuple[str, ...], tuple[tuple[int, int], ...], tuple[int, ...]]:
    """iBUG 300-W 68-point mark-up: names, contour skeleton and flip permutation.

    Side names follow the subject (300-W's "right eyebrow", points 17-21, is on the image left).
    """
    groups = (  # (name, first index, count, closed contour)
        ("jaw", 0, 17, False), ("right_eyebrow", 17, 5, False), ("left_eyebrow", 22, 5, False),
        ("nose_bridge", 27, 4, False), ("nose_lower", 31, 5, False),
        ("right_eye", 36, 6, True), ("left_eye", 42, 6, True),
        ("outer_lip", 48, 12, True), ("inner_lip", 60, 8, True),
    )  # fmt: skip
    names: list[str] = []
    edges: list[tuple[int, int]] = []
    for gname, start, count, closed in groups:
        names += [f"{gname}_{i}" for i in range(count)]
        edges += [(start + i, start + i + 1) for i in range(count - 1)]
        if closed:
            edges.append((start + count - 1, start))
    edges.append((30, 33))  # nose tip to the bottom of the nose
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # eyebrows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lip
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lip
    flip = list(range(68))
    for a, b in pairs:
        flip[a], flip[b] = b, a
    return tuple(names), tuple(edges), tuple(flip)


def coco17() -> KeypointSchema:
    """COCO-17 person keypoints with the published sigmas."""
    skeleton = tuple((a - 1, b - 1) for a, b in COCO17_SKELETON_1BASED)
    return KeypointSchema.create("person", COCO17_KEYPOINTS, skeleton, sigmas=COCO17_SIGMAS)


def hand21() -> KeypointSchema:
    """21 hand keypoints (wrist + 4 per finger). One hand: flipping swaps no keypoints."""
    return KeypointSchema.create(
        "hand", HAND21_KEYPOINTS, HAND21_SKELETON, flip_idx=range(21), sigmas=HAND21_SIGMAS
    )


def face68() -> KeypointSchema:
    """iBUG 300-W 68 facial landmarks. Sigma 0.025 everywhere (COCO's eye sigma): facial
    landmarks are small, well-defined points; NME is the usual face metric anyway."""
    names, edges, flip = _face68()
    return KeypointSchema.create("face", names, edges, flip_idx=flip, default_sigma=0.025)


def arm() -> KeypointSchema:
    """A robot arm with a two-finger gripper: the custom schema of the synthetic `arm` data."""
    names = ("base", "shoulder", "elbow", "wrist", "gripper_left", "gripper_right")
    skeleton = (("base", "shoulder"), ("shoulder", "elbow"), ("elbow", "wrist"),
                ("wrist", "gripper_left"), ("wrist", "gripper_right"))  # fmt: skip
    return KeypointSchema.create("arm", names, skeleton)


#: COCO-WholeBody's sigmas of the six foot points (big toe, small toe, heel; left then right)
_FOOT_SIGMAS = {
    "left_big_toe": 0.068,
    "left_small_toe": 0.066,
    "left_heel": 0.066,
    "right_big_toe": 0.092,
    "right_small_toe": 0.094,
    "right_heel": 0.094,
}
_FEET = tuple(_FOOT_SIGMAS)


def _openpose(
    name: str, keypoints: tuple[str, ...], bones: tuple[tuple[str, str], ...]
) -> KeypointSchema:
    """An OpenPose output layout: COCO's sigma where COCO has the point, COCO-WholeBody's on
    the feet, `DEFAULT_SIGMA` on the points neither has (neck, mid hip, head top)."""
    known = dict(zip(COCO17_KEYPOINTS, COCO17_SIGMAS, strict=True)) | _FOOT_SIGMAS
    sigmas = {k: known[k] for k in keypoints if k in known}
    return KeypointSchema.create(name, keypoints, bones, sigmas=sigmas)


_LIMBS = tuple(
    (f"{side}_{a}", f"{side}_{b}")
    for side in ("right", "left")
    for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))
)
_FACE = (
    ("nose", "right_eye"),
    ("right_eye", "right_ear"),
    ("nose", "left_eye"),
    ("left_eye", "left_ear"),
)
_TOES = tuple(
    (f"{side}_{a}", f"{side}_{b}")
    for side in ("right", "left")
    for a, b in (("ankle", "big_toe"), ("big_toe", "small_toe"), ("ankle", "heel"))
)


#: OpenPose's own order (COCO-18 and BODY_25): the head and arms, then (BODY_25 puts its mid
#: hip here) the legs, then the eyes and ears
_OPENPOSE_ARMS = ("nose", "neck") + tuple(
    f"{side}_{part}" for side in ("right", "left") for part in ("shoulder", "elbow", "wrist")
)
_OPENPOSE_LEGS = tuple(
    f"{side}_{part}" for side in ("right", "left") for part in ("hip", "knee", "ankle")
)
_OPENPOSE_FACE = ("right_eye", "left_eye", "right_ear", "left_ear")
_NECK_TO = (("neck", "nose"), ("neck", "right_shoulder"), ("neck", "left_shoulder"))


def coco18() -> KeypointSchema:
    """OpenPose's COCO output (18 points: COCO-17 with a neck, in OpenPose's order)."""
    names = _OPENPOSE_ARMS + _OPENPOSE_LEGS + _OPENPOSE_FACE
    trunk = _NECK_TO + (("neck", "right_hip"), ("neck", "left_hip"))
    return _openpose("coco18", names, trunk + _LIMBS + _FACE)


def body25() -> KeypointSchema:
    """OpenPose's BODY_25 (COCO-18 with a mid hip and six foot points, in OpenPose's order)."""
    names = _OPENPOSE_ARMS + ("mid_hip",) + _OPENPOSE_LEGS + _OPENPOSE_FACE + _FEET
    trunk = _NECK_TO + (("neck", "mid_hip"), ("mid_hip", "right_hip"), ("mid_hip", "left_hip"))
    return _openpose("body25", names, trunk + _LIMBS + _FACE + _TOES)


def body25b() -> KeypointSchema:
    """OpenPose's experimental BODY_25B (COCO-17 in COCO's order, then the upper neck, the
    head top and six foot points), the model of Pose2Sim's demo."""
    names = COCO17_KEYPOINTS + ("neck", "head_top") + _FEET
    trunk = (
        ("neck", "head_top"),
        ("neck", "nose"),
        ("neck", "right_shoulder"),
        ("neck", "left_shoulder"),
        ("right_shoulder", "right_hip"),
        ("left_shoulder", "left_hip"),
        ("right_hip", "left_hip"),
    )
    return _openpose("body25b", names, trunk + _LIMBS + _FACE + _TOES)


PRESETS: Mapping[str, Callable[[], KeypointSchema]] = MappingProxyType(
    {
        "coco17": coco17,
        "hand21": hand21,
        "face68": face68,
        "arm": arm,
        "coco18": coco18,
        "body25": body25,
        "body25b": body25b,
    }
)


def get_schema(name_or_path: str | Path) -> KeypointSchema:
    """A preset by name (`coco17`, `hand21`, `face68`, `arm`, `coco18`, `body25`, `body25b`)
    or a schema YAML file.

    Example:
        >>> get_schema("coco17").num_keypoints
        17
    """
    key = str(name_or_path)
    if key in PRESETS:
        return PRESETS[key]()
    path = Path(name_or_path)
    if path.suffix.lower() in {".yaml", ".yml"}:
        return load_schema_yaml(path)
    raise SchemaError(f"unknown schema {key!r}: use one of {sorted(PRESETS)} or a .yaml file")


def load_schema_yaml(path: str | Path) -> KeypointSchema:
    """Read a schema YAML file: `name`, `keypoints`, optional `skeleton` (names or 0-based
    indices), `flip_pairs` or `flip_idx`, `sigmas` (list or {name: sigma}), `default_sigma`."""
    path = Path(path)
    data: Any = read_yaml(path, SchemaError)
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: a schema file must be a mapping with a 'keypoints' list")
    try:
        return KeypointSchema.from_dict(data, name=data.get("name", path.stem))
    except SchemaError as e:
        raise SchemaError(f"{path}: {e}") from None


def match_preset(keypoints: tuple[str, ...]) -> KeypointSchema | None:
    """The preset whose keypoint names are exactly `keypoints`, if any (to inherit sigmas)."""
    for factory in PRESETS.values():
        schema = factory()
        if schema.keypoints == tuple(keypoints):
            return schema
    return None
