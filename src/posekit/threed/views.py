"""One camera's 2D keypoints over time, read from posekit's tracked events, `posekit predict`'s
predictions.json or OpenPose's per-frame JSON, as dense arrays the triangulation works on.

Pixels are kept in OpenCV's convention, the one the calibration uses: the centre of the
top-left pixel is (0, 0). posekit's own coordinates are continuous (that centre is (0.5, 0.5)),
so events and predictions are shifted by half a pixel on reading; OpenPose already writes
OpenCV's pixels.
Every problem is one line naming the file (and line or person); nothing is dropped silently:
an OpenPose folder's files that are not frames of the stream are named in one log line.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posekit.schema import KeypointSchema, get_schema, match_preset
from posekit.utils.bounds import MAX_COORDINATE, is_number
from posekit.utils.errors import UserError, quoted

log = logging.getLogger(__name__)

#: posekit's pixel centres are at .5, OpenCV's (and the calibration's) at whole numbers
POSEKIT_TO_OPENCV = -0.5
#: the most bytes one OpenPose frame file or one event line may have
MAX_RECORD_BYTES = 1 << 20
#: `cam01.0012.json`, `clip_000000000012_keypoints.json`: the frame number is the last digits
_FRAME_FILE = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)(?P<suffix>_keypoints)?\.json$")


@dataclass
class View:
    """The people one camera saw, frame by frame."""

    name: str
    frames: np.ndarray  # (F,) frame numbers, increasing
    keypoints: np.ndarray  # (F, P, K, 3) x, y (OpenCV pixels), confidence; NaN: not seen
    ids: np.ndarray  # (F, P) track ids, -1 where no person or no id
    # (F,) seconds since the start of the camera's video, where the source says (events)
    times: np.ndarray | None = None

    def shifted(self, offset: int) -> View:
        """The same view on the others' clock: its frame n is their frame n - `offset` (its
        recording started `offset` frames before theirs)."""
        return View(self.name, self.frames - offset, self.keypoints, self.ids, self.times)


def read_view(name: str, path: str | Path, schema: KeypointSchema) -> View:
    """A camera's 2D keypoints from `path`: a folder of OpenPose JSON frames, a
    `posekit.track/1` event file (`.jsonl`), or `posekit predict --save-json`'s
    `predictions.json` (`.json`)."""
    path = Path(path)
    if path.is_dir():
        return read_openpose(name, path, schema)
    if not path.is_file():
        raise UserError(f"view {name}: {path}: no such file or folder")
    if path.suffix.lower() == ".json":
        return read_predictions(name, path, schema)
    return read_events(name, path, schema)


#: the largest predictions.json read
MAX_PREDICTIONS_BYTES = 1 << 30


def read_predictions(name: str, path: str | Path, schema: KeypointSchema) -> View:
    """`posekit predict --save-json` results (COCO keypoint results that also name their
    `file_name` and, for a video, `frame`): a video's entries by frame, an image folder's by
    the sorted order of its file names. No track ids."""
    path = Path(path)
    entries = _json_file(path, MAX_PREDICTIONS_BYTES)
    if not isinstance(entries, list):
        raise UserError(f"{path}: not a list of COCO keypoint results")
    k = schema.num_keypoints
    keyed: list[tuple[tuple[int, str], np.ndarray]] = []
    for i, e in enumerate(entries):
        where = f"{path}: entry {i}"
        flat = e.get("keypoints") if isinstance(e, dict) else None
        if not isinstance(flat, list) or len(flat) != 3 * k:
            size = len(flat) if isinstance(flat, list) else "no"
            raise UserError(f"{where}: {size} keypoint numbers, {schema.name} has {k} x 3")
        frame = e.get("frame", 0)
        if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
            raise UserError(f"{where}: 'frame' must be a whole number >= 0, got {quoted(frame)}")
        points = _numbers(flat, where).reshape(k, 3)
        points[:, :2] += POSEKIT_TO_OPENCV
        keyed.append(((frame, str(e.get("file_name", ""))), points))
    if not keyed:
        raise UserError(f"{path}: no predictions")
    videos = {f for (f, _), _ in keyed if f > 0}
    order = sorted({key for key, _ in keyed}, key=lambda key: key if videos else key[::-1])
    number = {key: n if not videos else key[0] for n, key in enumerate(order)}
    frames: dict[int, list[np.ndarray]] = {}
    for key, points in keyed:
        frames.setdefault(number[key], []).append(points)
    numbers = sorted(frames)
    keypoints = _pad([np.stack(frames[n]) for n in numbers], k)
    ids = np.full(keypoints.shape[:2], -1, dtype=np.int64)
    return View(name, np.asarray(numbers, dtype=np.int64), keypoints, ids)


def read_openpose(name: str, folder: str | Path, schema: KeypointSchema) -> View:
    """OpenPose's `--write_json` output (one file per frame, `pose_keypoints_2d` as x, y, c
    triples) in `schema`'s order (`body25`, `body25b`, `coco18`). A keypoint at (0, 0) with
    confidence 0 is OpenPose's "not found"."""
    folder = Path(folder)
    streams: dict[tuple[str, str], dict[int, Path]] = {}
    for p in sorted(folder.iterdir()):
        m = _FRAME_FILE.match(p.name)
        if m and p.is_file():
            key = (m["prefix"], m["suffix"] or "")
            number = int(m["number"])
            if number in streams.setdefault(key, {}):
                raise UserError(f"{p}: frame {number} again (also {streams[key][number].name})")
            streams[key][number] = p
    if not streams:
        raise UserError(f"{folder}: no OpenPose frame files (name0000.json) in the folder")
    key = max(streams, key=lambda k: len(streams[k]))
    others = [
        f"{prefix}N{suffix}.json ({len(files)} files)"
        for (prefix, suffix), files in streams.items()
        if (prefix, suffix) != key
    ]
    if others:
        log.warning(
            "view %s: %s: frames are %sN%s.json; left out: %s",
            name,
            folder,
            *key,
            ", ".join(others),
        )
    numbers = sorted(streams[key])
    people = [_openpose_people(streams[key][n], schema) for n in numbers]
    keypoints = _pad(people, schema.num_keypoints)
    ids = np.full(keypoints.shape[:2], -1, dtype=np.int64)
    return View(name, np.asarray(numbers, dtype=np.int64), keypoints, ids)


def _openpose_people(path: Path, schema: KeypointSchema) -> np.ndarray:
    data = _json_file(path, MAX_RECORD_BYTES)
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise UserError(f"{path}: not an OpenPose frame (no 'people' list)")
    k = schema.num_keypoints
    out = np.full((len(people), k, 3), np.nan)
    for i, person in enumerate(people):
        flat = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        where = f"{path}: person {i}"
        if flat == []:  # OpenPose writes an empty list for a person without body points
            continue
        if not isinstance(flat, list) or len(flat) != 3 * k:
            size = len(flat) if isinstance(flat, list) else "no"
            raise UserError(
                f"{where}: {size} pose_keypoints_2d numbers, {schema.name} has "
                f"{k} keypoints x 3 = {3 * k}"
            )
        triples = _numbers(flat, where).reshape(k, 3)
        found = triples[:, 2] > 0
        out[i, found] = triples[found]
    return out


def read_events(name: str, path: str | Path, schema: KeypointSchema) -> View:
    """`posekit.track/1` events (JSON Lines, as `posekit track --save-jsonl` writes): one
    person per event, its `track_id` kept; the keypoint names must be `schema`'s."""
    path = Path(path)
    frames: dict[int, list[tuple[int, np.ndarray]]] = {}
    times: dict[int, float] = {}
    with path.open("rb") as stream:
        # a line is read up to the bound and no further: a huge one is refused, not held
        lines = iter(lambda: stream.readline(MAX_RECORD_BYTES + 1), b"")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            if len(line) > MAX_RECORD_BYTES:
                raise UserError(f"{where}: a line of more than {MAX_RECORD_BYTES} bytes")
            event = _json_record(line, where)
            frame, track_id, keypoints = _event(event, schema, where)
            frames.setdefault(frame, []).append((track_id, keypoints))
            stamp = event.get("timestamp")
            if is_number(stamp) and math.isfinite(stamp) and stamp >= 0:
                times.setdefault(frame, float(stamp))
    if not frames:
        raise UserError(f"{path}: no events")
    numbers = sorted(frames)
    keypoints = _pad([np.stack([k for _, k in frames[n]]) for n in numbers], len(schema.keypoints))
    ids = np.full(keypoints.shape[:2], -1, dtype=np.int64)
    for f, n in enumerate(numbers):
        ids[f, : len(frames[n])] = [t for t, _ in frames[n]]
    stamps = np.array([times.get(n, np.nan) for n in numbers])
    return View(name, np.asarray(numbers, dtype=np.int64), keypoints, ids, stamps)


def _event(event: Any, schema: KeypointSchema, where: str) -> tuple[int, int, np.ndarray]:
    if not isinstance(event, dict) or event.get("schema") != "posekit.track/1":
        raise UserError(f"{where}: not a posekit.track/1 event")
    frame, track_id, points = event.get("frame"), event.get("track_id"), event.get("keypoints")
    if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
        raise UserError(f"{where}: 'frame' must be a whole number >= 0, got {quoted(frame)}")
    if not isinstance(track_id, int) or isinstance(track_id, bool) or track_id < 1:
        raise UserError(f"{where}: 'track_id' must be a whole number >= 1, got {quoted(track_id)}")
    names = [p.get("name") if isinstance(p, dict) else None for p in points or []]
    if not isinstance(points, list) or names != list(schema.keypoints):
        raise UserError(
            f"{where}: the event's keypoints {quoted(names[:4])}... are not those of "
            f"schema {schema.name} ({quoted(list(schema.keypoints[:4]))}...)"
        )
    out = np.full((len(points), 3), np.nan)
    for i, p in enumerate(points):
        x, y, c = p.get("x"), p.get("y"), p.get("confidence")
        if x is None or y is None:
            continue
        out[i] = _numbers([x, y, 0.0 if c is None else c], f"{where}: keypoint {p['name']}")
    out[:, :2] += POSEKIT_TO_OPENCV
    return frame, track_id, out


def _json_file(path: Path, limit: int) -> Any:
    """A whole JSON file, its size checked before it is read."""
    size = path.stat().st_size
    if size > limit:
        raise UserError(f"{path}: {size} bytes, more than the {limit} allowed")
    return _json_record(path.read_bytes(), str(path))


def _json_record(data: bytes, where: str) -> Any:
    """Parsed JSON (already bounded by whoever read it), or one line saying where and why."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise UserError(f"{where}: invalid JSON ({str(e).splitlines()[0]})") from None


def _numbers(values: list[Any], where: str) -> np.ndarray:
    bad = [v for v in values if not is_number(v) or not math.isfinite(v)]
    if bad or any(abs(v) > MAX_COORDINATE for v in values):
        shown = bad[0] if bad else max(values, key=abs)
        raise UserError(
            f"{where}: {quoted(shown)} is not a finite coordinate or confidence "
            f"(|x| <= {MAX_COORDINATE:g})"
        )
    return np.asarray(values, dtype=np.float64)


def _pad(people: list[np.ndarray], k: int) -> np.ndarray:
    """(F, P, K, 3) from per-frame (N, K, 3) arrays, NaN where a frame has fewer people."""
    most = max((len(p) for p in people), default=0)
    out = np.full((len(people), max(most, 1), k, 3), np.nan)
    for f, p in enumerate(people):
        out[f, : len(p)] = p
    return out


def view_schema(name: str | None, paths: list[str | Path]) -> KeypointSchema:
    """The schema `name` (a preset or a YAML file), or else the preset whose keypoint names
    the first event of the first event file carries (OpenPose folders name none)."""
    if name is not None:
        return get_schema(name)
    for path in map(Path, paths):
        if path.is_file():
            with path.open("rb") as stream:
                first = stream.readline(MAX_RECORD_BYTES + 1)
            if len(first) > MAX_RECORD_BYTES:
                raise UserError(f"{path}:1: a line of more than {MAX_RECORD_BYTES} bytes")
            event = _json_record(first, f"{path}:1")
            points = event.get("keypoints") if isinstance(event, dict) else None
            names = tuple(p.get("name") for p in points or [] if isinstance(p, dict))
            schema = match_preset(names)  # type: ignore[arg-type]
            if schema is None:
                raise UserError(
                    f"{path}: the events' keypoints {quoted(list(names[:4]))}... "
                    "are no preset's: give --schema"
                )
            return schema
    raise UserError(
        "OpenPose folders do not name their keypoints: give --schema (body25, body25b or coco18)"
    )
