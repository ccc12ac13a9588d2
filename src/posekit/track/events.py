"""The tracked-object event stream: one JSON object per tracked object per frame (JSON Lines).

The format is versioned (`"schema": "posekit.track/1"`) and described by the JSON Schema in
`event.schema.json` (next to this module, also returned by `event_schema()`), so stream
processors (Flink, Spark, Kafka consumers ...) can validate and parse it. Fields are only ever
added within a version; renaming or removing one means a new version.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import IO, Any

import numpy as np

from posekit.predict.results import Results
from posekit.utils.errors import UserError

SCHEMA_VERSION = "posekit.track/1"


def event_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event."""
    text = resources.files("posekit.track").joinpath("event.schema.json").read_text()
    return json.loads(text)


def _num(v: float, nd: int = 3) -> float | None:
    return round(float(v), nd) if np.isfinite(v) else None


def frame_events(
    r: Results, angles: dict[str, np.ndarray] | None = None, *, source: str | None = None
) -> list[dict[str, Any]]:
    """Events of one tracked frame: every instance with a track id (untracked ones are not
    events). `angles` maps an angle name to (N,) degrees (NaN: not measurable)."""
    if r.boxes.id is None:
        raise UserError("these results are not tracked (boxes.id is None)")
    events = []
    for i in np.nonzero(r.boxes.id >= 0)[0]:
        c = int(r.boxes.cls[i])
        schema = r.schemas[c]
        kp = r.keypoints.data[i, : schema.num_keypoints]
        e: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "source": source if source is not None else r.path,
            "frame": int(r.frame if r.frame is not None else 0),
            "timestamp": _num(r.timestamp if r.timestamp is not None else 0.0, 6),
            "track_id": int(r.boxes.id[i]),
            "class_id": c,
            "class": r.names.get(c, str(c)),
            "confidence": _num(r.boxes.conf[i], 5),
            "box": [_num(v) for v in r.boxes.xyxy[i]],
            "keypoints": [
                {"name": n, "x": _num(x), "y": _num(y), "confidence": _num(s, 5)}
                for n, (x, y, s) in zip(schema.keypoints, kp, strict=True)
            ],
        }
        if angles:
            e["angles"] = {name: _num(a[i], 2) for name, a in angles.items()}
        if r.keypoints3d is not None:
            e["keypoints_3d"] = [
                {"name": n, "x": _num(x, 4), "y": _num(y, 4), "z": _num(z, 4)}
                for n, (x, y, z) in zip(schema.keypoints, r.keypoints3d[i], strict=False)
            ]
        events.append(e)
    return events


def event_line(event: dict[str, Any]) -> str:
    """One event as a JSON Lines line (compact; NaN refused: unmeasurable numbers are null)."""
    return json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n"


class JsonlWriter:
    """Appends events as JSON Lines to a file, or to stdout for `-`; flushed per frame so a
    consumer reading the pipe sees each frame as soon as it is done."""

    def __init__(self, target: str | Path) -> None:
        self._own = str(target) != "-"
        if self._own:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self.stream: IO[str] = Path(target).open("w") if self._own else sys.stdout  # noqa: SIM115
        self.count = 0

    def write(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            self.stream.write(event_line(e))
        self.count += len(events)
        self.stream.flush()

    def close(self) -> None:
        if self._own:
            self.stream.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
