"""Motion analytics on keypoints, vectorised over frames and tracks.

Arrays are (..., K, 2) or (..., K, 3) keypoints (x, y[, confidence]); the leading axes are
anything, e.g. (T, N) frames x tracks. Missing keypoints are NaN and give NaN results. Times are
seconds (from the video's timestamps, not an assumed frame rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from posekit.schema import KeypointSchema
from posekit.utils.errors import UserError


def _xy(kp: np.ndarray, kpt_conf: float | None) -> np.ndarray:
    kp = np.asarray(kp, dtype=np.float64)
    xy = kp[..., :2].copy()
    if kpt_conf is not None and kp.shape[-1] > 2:
        xy[kp[..., 2] < kpt_conf] = np.nan
    return xy


def resolve_triple(schema: KeypointSchema, triple: Sequence[int | str]) -> tuple[int, int, int]:
    """Keypoint indices of an (a, b, c) triple given by names or indices."""
    if len(triple) != 3:
        raise UserError(f"an angle needs three keypoints, got {list(triple)}")
    try:
        a, b, c = (schema.index(k) if isinstance(k, str) else int(k) for k in triple)
    except KeyError as e:  # a name the schema does not have: the message lists the names
        raise UserError(str(e.args[0])) from None
    if not all(0 <= i < schema.num_keypoints for i in (a, b, c)):
        raise UserError(
            f"angle {list(triple)}: {schema.name!r} has {schema.num_keypoints} keypoints"
        )
    return a, b, c


def joint_angle(
    keypoints: np.ndarray, triple: tuple[int, int, int], *, kpt_conf: float | None = None
) -> np.ndarray:
    """Angle at keypoint b between the segments b->a and b->c, in degrees in [0, 180].

    Example:
        >>> kp = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
        >>> float(joint_angle(kp, (0, 1, 2)))
        90.0
    """
    xy = _xy(keypoints, kpt_conf)
    a, b, c = triple
    u = xy[..., a, :] - xy[..., b, :]
    v = xy[..., c, :] - xy[..., b, :]
    cross = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    dot = (u * v).sum(-1)
    return np.degrees(np.abs(np.arctan2(cross, dot)))


def joint_angle_3d(points: np.ndarray, triple: tuple[int, int, int]) -> np.ndarray:
    """Angle at keypoint b between b->a and b->c of 3D points (..., K, 3) (x, y, z), in
    degrees in [0, 180]; NaN where a point is missing.

    Example:
        >>> p = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        >>> float(joint_angle_3d(p, (0, 1, 2)))
        90.0
    """
    xyz = np.asarray(points, dtype=np.float64)
    a, b, c = triple
    u = xyz[..., a, :] - xyz[..., b, :]
    v = xyz[..., c, :] - xyz[..., b, :]
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), (u * v).sum(-1)))


def joint_angles(
    keypoints: np.ndarray,
    schema: KeypointSchema,
    triples: dict[str, Sequence[int | str]],
    *,
    kpt_conf: float | None = None,
) -> dict[str, np.ndarray]:
    """Several named angles at once: {name: (...) degrees}."""
    return {
        name: joint_angle(keypoints, resolve_triple(schema, t), kpt_conf=kpt_conf)
        for name, t in triples.items()
    }


def time_derivative(values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """d values / dt along axis 0 with (T,) timestamps: central differences inside, one-sided
    at the ends (`numpy.gradient` with uneven spacing)."""
    values = np.asarray(values, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if len(t) != len(values):
        raise UserError(f"{len(values)} frames but {len(t)} timestamps")
    if len(t) < 2:
        return np.full_like(values, np.nan)
    return np.gradient(values, t, axis=0)


def angular_velocity(angles: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Degrees per second of a (T, ...) angle signal."""
    return time_derivative(angles, t)


def keypoint_speed(
    keypoints: np.ndarray, t: np.ndarray, *, kpt_conf: float | None = None
) -> np.ndarray:
    """Speed in px/s of every keypoint: (T, ..., K, 2|3) -> (T, ..., K)."""
    v = time_derivative(_xy(keypoints, kpt_conf), t)
    return np.hypot(v[..., 0], v[..., 1])


def keypoint_distance(
    keypoints: np.ndarray, i: int, j: int, *, kpt_conf: float | None = None
) -> np.ndarray:
    """Euclidean distance in px between keypoints i and j (e.g. wrist to wrist)."""
    xy = _xy(keypoints, kpt_conf)
    d = xy[..., i, :] - xy[..., j, :]
    return np.hypot(d[..., 0], d[..., 1])


@dataclass
class RepetitionCounter:
    """Counts repetitions of a movement from an angle signal with hysteresis: one repetition is
    a rise above `high` after a fall below `low` (e.g. a squat: knee angle below 100, then back
    above 160). Noise between the thresholds never counts. Feed it frame by frame (`update`) or
    a whole signal at once (`count`).

    Example:
        >>> RepetitionCounter(low=100, high=160).count(np.array([170, 90, 170, 95, 165]))
        2
    """

    low: float
    high: float
    count_total: int = 0
    armed: bool = False  # went below `low` and waits to rise above `high`
    events: list[int] = field(default_factory=list)  # frame indices where a repetition ended
    _frame: int = 0

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise UserError(f"low ({self.low}) must be below high ({self.high})")

    def update(self, value: float) -> bool:
        """Feed one value; True when it completes a repetition. NaN (missing) is ignored."""
        done = False
        if value == value:  # not NaN
            if value < self.low:
                self.armed = True
            elif value > self.high and self.armed:
                self.armed = False
                self.count_total += 1
                self.events.append(self._frame)
                done = True
        self._frame += 1
        return done

    def count(self, signal: np.ndarray) -> int:
        """Repetitions in a whole signal (vectorised): the number of low -> high crossings."""
        s = np.asarray(signal, dtype=np.float64)
        state = np.where(s < self.low, -1, np.where(s > self.high, 1, 0))
        state = state[state != 0]  # keep only the decisive frames (NaN compares False: dropped)
        if state.size == 0:
            return 0
        return int(np.count_nonzero((state[1:] == 1) & (state[:-1] == -1)))
