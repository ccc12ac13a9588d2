"""The rules' logic on one track's frames, vectorised over frames and resumable: a call takes the
frames that arrived since the last one plus the state it left, and returns the new actions and
the new state. Spark's stateful operator calls it once per track and micro-batch
(`posekit.actions.job`); `detect_actions` runs it in-process on a list of events. Both give
the same actions, since this module is the only copy of the logic.

The state is plain JSON (Spark keeps it as a string per track): the last frame seen (so a
frame delivered twice, e.g. after a sink restart, is ignored), the last `horizon` seconds of
the track's frames (what windowed rules look back over), and each rule's own few scalars.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from posekit.actions.events3d import SCHEMA_3D, as_track_event
from posekit.actions.rules import (
    BOX_CENTER,
    Dwell,
    Envelope,
    Fall,
    Repetitions,
    Rule,
    Speed,
)
from posekit.analytics import joint_angle, joint_angle_3d

ACTION_SCHEMA = "posekit.action/1"

#: columns of a track's frames, besides one `<point>:x`, `<point>:y`, `<point>:c`, `<point>:z`
#: per point; `bz1`, `bz2` (and every `:z`) are NaN but for 3D events
#: (`posekit.actions.events3d`): the lowest and highest point's height
BASE_COLUMNS = ("frame", "timestamp", "bx1", "by1", "bx2", "by2", "bz1", "bz2")

#: the fields of one action, in order (see action.schema.json)
ACTION_FIELDS = (
    "schema", "rule", "kind", "source", "track_id", "class", "start_frame", "end_frame",
    "start_time", "end_time", "count", "value", "keypoint",
)  # fmt: skip


def needed_points(rules: Sequence[Rule]) -> tuple[str, ...]:
    """Every keypoint the rules read, once, in first-use order (`box_center` is derived)."""
    names: dict[str, None] = {}
    for r in rules:
        names.update((p, None) for p in r.points() if p != BOX_CENTER)
    return tuple(names)


def point_columns(points: Iterable[str]) -> list[str]:
    return [f"{p}:{c}" for p in points for c in "xycz"]


@dataclass
class Frames:
    """One track's frames in order: `columns` maps BASE_COLUMNS and point columns to (T,)
    float arrays (NaN: missing)."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["frame"])

    @property
    def t(self) -> np.ndarray:
        return self.columns["timestamp"]

    @property
    def frame(self) -> np.ndarray:
        return self.columns["frame"]

    def point(self, name: str, kpt_conf: float) -> np.ndarray:
        """(T, 2) x, y of a keypoint (NaN where missing or below `kpt_conf`) or the box centre."""
        c = self.columns
        if name == BOX_CENTER:
            return np.stack([(c["bx1"] + c["bx2"]) / 2, (c["by1"] + c["by2"]) / 2], axis=1)
        xy = np.stack([c[f"{name}:x"], c[f"{name}:y"]], axis=1)
        conf = c[f"{name}:c"]
        xy[~(conf >= kpt_conf)] = np.nan  # NaN confidence: missing too
        return xy

    def keypoints(self, names: Sequence[str], kpt_conf: float) -> np.ndarray:
        """(T, len(names), 2) for the analytics functions."""
        return np.stack([self.point(n, kpt_conf) for n in names], axis=1)

    def heights(self, names: Sequence[str], kpt_conf: float) -> np.ndarray:
        """(T, len(names)) heights of keypoints of 3D events (NaN for 2D ones and where
        missing)."""
        c = self.columns
        out = np.stack([c[f"{n}:z"] for n in names], axis=1)
        seen = np.stack([c[f"{n}:c"] >= kpt_conf for n in names], axis=1)
        return np.where(seen, out, np.nan)

    def keypoints3d(self, names: Sequence[str], kpt_conf: float) -> np.ndarray:
        """(T, len(names), 3) floor x, y and height of 3D events' keypoints (NaN for 2D)."""
        return np.concatenate(
            [self.keypoints(names, kpt_conf), self.heights(names, kpt_conf)[..., None]], axis=2
        )

    def take(self, index: np.ndarray | slice) -> Frames:
        return Frames({k: v[index] for k, v in self.columns.items()})

    @staticmethod
    def concat(a: Frames, b: Frames) -> Frames:
        """`a`'s frames then `b`'s (a column `a` lacks, as in a state kept by an earlier
        version, is NaN for its frames)."""
        gap = np.full(len(a), np.nan)
        return Frames({k: np.concatenate([a.columns.get(k, gap), b.columns[k]]) for k in b.columns})

    def to_state(self) -> dict[str, list[float | None]]:
        return {k: [None if v != v else float(v) for v in col] for k, col in self.columns.items()}

    @staticmethod
    def from_state(data: dict[str, list[float | None]]) -> Frames:
        return Frames({k: np.array(v, dtype=np.float64) for k, v in data.items()})


@dataclass(frozen=True)
class Batch:
    """What a rule sees of one call: `frames`, the track's kept past and then its new frames
    (windowed rules look back over the past); `new`, the new frames alone, which start at
    `first_new` in `frames` (only they can complete an action)."""

    frames: Frames
    first_new: int
    new: Frames


# ---- vectorised building blocks --------------------------------------------------------------


def hold_last(values: np.ndarray, known: np.ndarray, before: Any) -> np.ndarray:
    """`values` where `known`, else the last known value before (`before` at the start)."""
    idx = np.where(known, np.arange(len(values)), -1)
    np.maximum.accumulate(idx, out=idx)
    out = np.where(idx >= 0, values[np.maximum(idx, 0)], before)
    return out


def rising(mask: np.ndarray, before: bool) -> np.ndarray:
    """Indices where `mask` becomes True (`before`: its value just before index 0)."""
    prev = np.concatenate([[before], mask[:-1]])
    return np.nonzero(mask & ~prev)[0]


def range_min(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """min(values[lo_i:hi_i]) for every i at once (a sparse table; +inf for an empty range)."""
    n = len(values)
    if n == 0:
        return np.full(len(lo), np.inf)
    table = [values]
    span = 1
    while 2 * span <= n:
        prev = table[-1]
        table.append(np.minimum(prev[: len(prev) - span], prev[span:]))
        span *= 2
    width = np.maximum(hi - lo, 1)
    level = np.floor(np.log2(width)).astype(np.int64)
    out = np.full(len(lo), np.inf)
    for k in np.unique(level):  # one pass per power of two (<= log2 n), not per frame
        sel = level == k
        row = table[k]
        a, b = lo[sel], hi[sel] - (1 << int(k))
        out[sel] = np.minimum(row[np.clip(a, 0, len(row) - 1)], row[np.clip(b, 0, len(row) - 1)])
    out[hi <= lo] = np.inf
    return out


#: (points x edges) tested at once by `inside_polygon`: bounds its memory (~64 MB) whatever
#: the polygon's size.
POLYGON_BLOCK = 1 << 20


def inside_polygon(xy: np.ndarray, polygon: Sequence[Sequence[float]]) -> np.ndarray:
    """(T,) True where the point is inside the polygon (even-odd rule; all points against a
    block of edges at a time, `POLYGON_BLOCK` pairs). NaN points are outside."""
    poly = np.asarray(polygon, dtype=np.float64)
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    px, py = xy[:, :1], xy[:, 1:2]
    crossings = np.zeros(len(xy), dtype=np.int64)
    step = max(1, POLYGON_BLOCK // max(1, len(xy)))
    for a in range(0, len(poly), step):
        e = slice(a, a + step)
        straddles = (y1[e] > py) != (y2[e] > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross_x = x1[e] + (py - y1[e]) * (x2[e] - x1[e]) / (y2[e] - y1[e])
        crossings += np.count_nonzero(straddles & (px < cross_x), axis=1)
    return crossings % 2 == 1


# ---- one function per kind -------------------------------------------------------------------


def _action(rule: Rule, frames: Frames, start: int, end: int, **extra: Any) -> dict[str, Any]:
    return {
        "rule": rule.name,
        "kind": rule.kind,
        "start_frame": int(frames.frame[start]),
        "end_frame": int(frames.frame[end]),
        "start_time": float(frames.t[start]),
        "end_time": float(frames.t[end]),
        "count": extra.get("count"),
        "value": extra.get("value"),
        "keypoint": extra.get("keypoint"),
    }


def _repetitions(rule: Repetitions, batch: Batch, state: dict[str, Any]) -> list[dict[str, Any]]:
    new = batch.new
    angle = joint_angle(new.keypoints(rule.angle, rule.kpt_conf), (0, 1, 2))
    in_3d = joint_angle_3d(new.keypoints3d(rule.angle, rule.kpt_conf), (0, 1, 2))
    angle = np.where(np.isfinite(new.columns["bz1"]), in_3d, angle)  # 3D events: in 3D
    decisive = np.where(angle < rule.low, -1, np.where(angle > rule.high, 1, 0))
    idx = np.nonzero(decisive)[0]  # NaN compares False: never decisive
    if idx.size == 0:
        return []
    d = decisive[idx]
    prev = np.concatenate([[state.get("phase", 0)], d[:-1]])
    ends = np.nonzero((d == 1) & (prev == -1))[0]
    # a repetition starts at the last frame above `high` before its dip (or where it began)
    last_high = np.maximum.accumulate(np.where(d == 1, np.arange(len(d)), -1))
    out = []
    count = state.get("count", 0)
    for e in ends:  # one entry per completed repetition (a handful per batch), not per frame
        count += 1
        s = last_high[e - 1] if e > 0 else -1
        if s >= 0:
            start_frame, start_time = new.frame[idx[s]], new.t[idx[s]]
        elif state.get("high_frame") is not None:
            start_frame, start_time = state["high_frame"], state["high_time"]
        else:  # the track began below `low`: the repetition starts at its first dip
            first_low = idx[np.nonzero(d[:e] == -1)[0][0]] if (d[:e] == -1).any() else idx[e]
            start_frame, start_time = new.frame[first_low], new.t[first_low]
        a = _action(rule, new, idx[e], idx[e], count=count)
        a["start_frame"], a["start_time"] = int(start_frame), float(start_time)
        out.append(a)
    state["count"] = count
    state["phase"] = int(d[-1])
    highs = idx[d == 1]
    if highs.size:
        state["high_frame"], state["high_time"] = (
            float(new.frame[highs[-1]]),
            float(new.t[highs[-1]]),
        )
    return out


def _fall(rule: Fall, batch: Batch, state: dict[str, Any]) -> list[dict[str, Any]]:
    frames, first_new = batch.frames, batch.first_new
    pts = frames.keypoints(rule.keypoints, rule.kpt_conf)
    in_3d = np.isfinite(frames.columns["bz1"])[:, None]
    # image y grows downwards; a 3D event's height upwards (so it counts as its negative)
    ys = np.where(in_3d, -frames.heights(rule.keypoints, rule.kpt_conf), pts[..., 1])
    seen = np.count_nonzero(~np.isnan(ys), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hip_y = np.nansum(ys, axis=1) / seen  # (T,) mean of those seen
    c = frames.columns
    height = np.where(in_3d[:, 0], c["bz2"] - c["bz1"], c["by2"] - c["by1"])
    level = hip_y + rule.drop * height  # how low the hips must get for a fall from this frame
    t = frames.t
    i = np.arange(first_new, len(frames))
    hold_lo = np.searchsorted(t, t[i] - rule.hold, side="left")
    before_lo = np.searchsorted(t, t[i] - rule.hold - rule.window, side="left")
    # the highest the hips were during the hold (NaN frames do not interrupt it) ...
    low_during_hold = range_min(np.where(np.isnan(hip_y), np.inf, hip_y), hold_lo, i + 1)
    # ... is still lower than a fall threshold set within the window before the hold
    threshold = range_min(np.where(np.isnan(level), np.inf, level), before_lo, hold_lo)
    # (an empty window before the hold, as at a track's start, gives an infinite threshold)
    fallen = np.isfinite(low_during_hold) & np.isfinite(threshold)
    fallen &= low_during_hold >= threshold
    out = []
    for k in rising(fallen, bool(state.get("fallen", False))):
        a = _action(rule, frames, int(hold_lo[k]), int(i[k]))
        out.append(a)
    if len(fallen):
        state["fallen"] = bool(fallen[-1])
    return out


def _dwell(rule: Dwell, batch: Batch, state: dict[str, Any]) -> list[dict[str, Any]]:
    new = batch.new
    xy = new.point(rule.point, rule.kpt_conf)
    known = ~np.isnan(xy).any(axis=1)
    inside = hold_last(inside_polygon(xy, rule.zone), known, bool(state.get("inside", False)))
    # when the current stay began: carried over, or the frame where the point entered
    entries = rising(inside, bool(state.get("inside", False)))
    entry_of = np.full(len(new), -1)
    entry_of[entries] = entries
    np.maximum.accumulate(entry_of, out=entry_of)
    since_t = np.where(
        entry_of >= 0, new.t[np.maximum(entry_of, 0)], state.get("since_time", np.nan)
    )
    since_f = np.where(
        entry_of >= 0, new.frame[np.maximum(entry_of, 0)], state.get("since_frame", -1)
    )
    done = inside & (new.t - since_t >= rule.seconds)
    out = []
    for k in rising(done, bool(state.get("reported", False))):
        a = _action(rule, new, k, k, value=round(float(new.t[k] - since_t[k]), 6))
        a["start_frame"], a["start_time"] = int(since_f[k]), float(since_t[k])
        out.append(a)
    state.update(inside=bool(inside[-1]), reported=bool(done[-1]))
    if inside[-1]:
        state.update(since_time=float(since_t[-1]), since_frame=float(since_f[-1]))
    return out


def _envelope(rule: Envelope, batch: Batch, state: dict[str, Any]) -> list[dict[str, Any]]:
    new = batch.new
    out = []
    outside_before = state.setdefault("outside", {})
    region = rule.region()
    for name in rule.keypoints:  # the rule's few keypoints; frames are vectorised
        xy = new.point(name, rule.kpt_conf)
        known = ~np.isnan(xy).any(axis=1)
        before = bool(outside_before.get(name, False))
        outside = hold_last(~inside_polygon(xy, region), known, before)
        # (a missed frame holds the last known side, so an edge is always at a seen frame)
        out += [_action(rule, new, k, k, keypoint=name) for k in rising(outside, before)]
        outside_before[name] = bool(outside[-1])
    return sorted(out, key=lambda a: a["end_frame"])


def _speed(rule: Speed, batch: Batch, state: dict[str, Any]) -> list[dict[str, Any]]:
    frames, first_new = batch.frames, batch.first_new
    xy = frames.point(rule.point, rule.kpt_conf)
    t = frames.t
    i = np.arange(first_new, len(frames))
    j = np.searchsorted(t, t[i] - rule.window, side="left")
    dt = t[i] - t[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.hypot(*(xy[i] - xy[j]).T) / dt
    known = np.isfinite(speed) & (dt > 0)
    fast = hold_last(speed > rule.threshold, known, bool(state.get("fast", False)))
    out = [
        _action(rule, frames, int(j[k]), int(i[k]), value=round(float(speed[k]), 3))
        for k in rising(fast, bool(state.get("fast", False)))
    ]
    if len(fast):
        state["fast"] = bool(fast[-1])
    return out


#: the logic of each kind of rule
LOGIC: dict[type[Rule], Callable[[Any, Batch, dict[str, Any]], list[dict[str, Any]]]] = {
    Repetitions: _repetitions, Fall: _fall, Dwell: _dwell, Envelope: _envelope, Speed: _speed,
}  # fmt: skip


# ---- one track, resumable --------------------------------------------------------------------


def step_track(
    rules: Sequence[Rule],
    columns: dict[str, np.ndarray],
    class_name: str,
    state: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The actions of one track's new frames (`columns`, any order, duplicates allowed), given
    the state the previous call returned (None for a new track); returns (actions, state).
    Frames at or before the last one already processed are ignored."""
    state = state or {"last_frame": -1, "tail": None, "rules": {}}
    frame = np.asarray(columns["frame"], dtype=np.float64)
    order = np.argsort(frame, kind="stable")
    frame = frame[order]
    keep = np.concatenate([[True], frame[1:] != frame[:-1]]) & (frame > state["last_frame"])
    new = Frames({k: np.asarray(v, dtype=np.float64)[order][keep] for k, v in columns.items()})
    if len(new) == 0:
        return [], state
    tail = Frames.from_state(state["tail"]) if state["tail"] else new.take(slice(0, 0))
    frames = Frames.concat(tail, new)
    batch = Batch(frames, len(tail), new)
    actions = []
    for rule in rules:
        if not rule.applies_to(class_name):
            continue
        actions += LOGIC[type(rule)](rule, batch, state["rules"].setdefault(rule.name, {}))
    horizon = max((r.horizon() for r in rules), default=0.0)
    if horizon > 0:
        recent = frames.t >= frames.t[-1] - horizon
        state["tail"] = frames.take(recent).to_state()
    state["last_frame"] = float(frames.frame[-1])
    return actions, state


def event_columns(events: Sequence[dict[str, Any]], points: Sequence[str]) -> dict[str, np.ndarray]:
    """The columns `step_track` reads, from `posekit.track/1` events or 3D events in their
    layout (`posekit.actions.events3d.as_track_event`): the in-process path; Spark builds the
    same columns in SQL."""
    n = len(events)
    cols = {c: np.full(n, np.nan) for c in (*BASE_COLUMNS, *point_columns(points))}
    want = set(points)
    keys = {"x": "x", "y": "y", "c": "confidence", "z": "z"}
    for r, e in enumerate(events):  # parsing JSON objects is per event by nature
        cols["frame"][r] = e["frame"]
        cols["timestamp"][r] = e["timestamp"]
        for c, v in zip(BASE_COLUMNS[2:], [*e["box"], *e.get("height", (None, None))], strict=True):
            cols[c][r] = np.nan if v is None else v
        for k in e["keypoints"]:
            if k["name"] in want:
                for c, key in keys.items():
                    v = k.get(key)
                    cols[f"{k['name']}:{c}"][r] = np.nan if v is None else v
    return cols


def detect_actions(
    events: Iterable[dict[str, Any]], rules: Sequence[Rule], *, up: str = "z"
) -> list[dict[str, Any]]:
    """Every action in a list of events, in-process (no Spark): the same logic the Spark job
    runs, on all of each track's frames at once. `posekit.track3d/1` events are read on the
    floor of their world, `up` its up axis (`posekit.actions.events3d`). Actions are sorted by
    (source, track_id, end_frame, rule)."""
    tracks: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for e in events:
        if e.get("schema") == SCHEMA_3D:
            e = as_track_event(e, up)
        tracks.setdefault((e["source"], int(e["track_id"])), []).append(e)
    points = needed_points(rules)
    out = []
    for (source, track_id), evs in sorted(tracks.items()):
        cls = str(evs[0]["class"])
        actions, _ = step_track(rules, event_columns(evs, points), cls, None)
        out += [finish_action(a, source, track_id, cls) for a in actions]
    return sorted(out, key=action_order)


def finish_action(a: dict[str, Any], source: str, track_id: int, cls: str) -> dict[str, Any]:
    """An action as its `posekit.action/1` record."""
    full = {"schema": ACTION_SCHEMA, "source": source, "track_id": int(track_id), "class": cls, **a}
    return {k: full[k] for k in ACTION_FIELDS}


def action_order(a: dict[str, Any]) -> tuple[Any, ...]:
    return (a["source"], a["track_id"], a["end_frame"], a["rule"], a["keypoint"] or "")
